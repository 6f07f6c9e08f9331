package lab

import (
	"fmt"
	"net/netip"
	"sync"
)

// Network lets Instant-mode lab hosts find each other by the UDP address:port they
// would bind, so qualifies and probes can be computed from the far host's running
// configuration with no packets. One Network is one loopback "wire"; it is safe
// for concurrent use.
type Network struct {
	mu    sync.Mutex
	hosts map[netip.AddrPort]*Host
}

// NewNetwork returns an empty Network.
func NewNetwork() *Network {
	return &Network{hosts: map[netip.AddrPort]*Host{}}
}

// register claims addrs for h, all or none; a claimed address fails with
// ErrAddressInUse as bind(2) would.
func (n *Network) register(addrs []netip.AddrPort, h *Host) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		if other, ok := n.hosts[a]; ok && other != h {
			return fmt.Errorf("bind %s: %w (by %s)", a, ErrAddressInUse, other.cfg.Name)
		}
	}
	for _, a := range addrs {
		n.hosts[a] = h
	}
	return nil
}

// unregister releases the addresses h holds.
func (n *Network) unregister(addrs []netip.AddrPort, h *Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		if n.hosts[a] == h {
			delete(n.hosts, a)
		}
	}
}

// lookup returns the host listening on a, or nil.
func (n *Network) lookup(a netip.AddrPort) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[a]
}

// reachable reports whether anything would answer a SIP request sent to a: any
// reply counts, whatever the far configuration (docs/asterisk.md#how-the-two-sides-relate).
func (n *Network) reachable(a netip.AddrPort) bool {
	far := n.lookup(a)
	return far != nil && !far.silent()
}
