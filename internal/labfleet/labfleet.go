// Package labfleet runs a whole fleet in one process for the demo, the fleet
// benchmark and end-to-end tests: for each site a PBX lab host and an OMniLeads
// lab host (internal/lab) on their own loopback addresses, each driven by a real
// node agent (internal/node) over a real NATS connection. Nothing here is a
// stand-in for pbxfleet's own code: only Asterisk is simulated.
package labfleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// Site is one site of a lab fleet.
type Site struct {
	ID       string
	Scenario asterisk.Scenario
	// PBXAddress and OMLAddress are loopback addresses; in the docker scenario
	// OMniLeads runs on the PBX host, so OMLAddress equals PBXAddress.
	PBXAddress string
	OMLAddress string
	// Profile is the OMniLeads transport profile, "1.x" or "2.x".
	Profile string
}

// Addresses returns the loopback addresses of site number n (0-based):
// 127.<1+n/250>.<n%250+1>.2 for the PBX and .3 for OMniLeads, so up to 62,500
// sites never share an address.
func Addresses(n int) (pbx, oml string) {
	b, c := 1+n/250, n%250+1
	return fmt.Sprintf("127.%d.%d.2", b, c), fmt.Sprintf("127.%d.%d.3", b, c)
}

// Options configures a lab fleet.
type Options struct {
	// Dir holds every host's config dir and every agent's state dir.
	Dir string
	// NATSURL is where the agents connect.
	NATSURL string
	// Instant makes the lab's checks instant (no SIP packets), to measure the
	// orchestration alone.
	Instant bool
	// Deadlines and PollInterval tune the agents (zero: the agents' defaults).
	Deadlines    node.Deadlines
	PollInterval time.Duration
	// StatusInterval is how often agents refresh their status; default 5s.
	StatusInterval time.Duration
	// QualifyTimeout is the lab hosts' qualify timeout (zero: the lab's default).
	QualifyTimeout time.Duration
	// SIPReloadLag is how long the lab PBX hosts take to land a `sip reload`
	// (zero: lab.DefaultSIPReloadLag, as chan_sip; negative: at once).
	SIPReloadLag time.Duration
	// Logger is shared by hosts and agents; nil discards.
	Logger *slog.Logger
	// KeyDir, when set, holds each node's curve seed <node>.xk (pbxfleet creds):
	// the agents open trunk secrets sealed to them.
	KeyDir string
	// ShareConn makes all agents share one NATS connection (cheaper for the
	// benchmark); otherwise each agent has its own, like separate processes.
	ShareConn bool
	// OMLObjects runs each OMniLeads agent in objects mode against a stand-in of
	// the OMniLeads application (lab.OMLApp, deployment podman-2x): the trunk and
	// the outbound route become its objects, its route file and hashes reach the
	// lab host, the agents prove the route with a call (route_probe), and it holds
	// an inbound route for each DID in InboundDIDs.
	OMLObjects  bool
	InboundDIDs []string
}

// Fleet is a running lab fleet. Close stops everything it started.
type Fleet struct {
	hosts  map[string]*lab.Host
	apps   map[string]*lab.OMLApp
	dirs   map[string]string
	agents map[string]*node.Agent
	conns  []*nats.Conn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	errs   []error
}

// Start starts the lab hosts and agents of sites. On error it stops whatever it
// had started.
func Start(ctx context.Context, sites []Site, opts Options) (*Fleet, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f := &Fleet{hosts: map[string]*lab.Host{}, apps: map[string]*lab.OMLApp{}, dirs: map[string]string{}, agents: map[string]*node.Agent{}, cancel: cancel}
	var network *lab.Network
	if opts.Instant {
		network = lab.NewNetwork()
	}
	var shared *nats.Conn
	if opts.ShareConn {
		nc, err := connect(opts.NATSURL, "pbxfleet lab fleet")
		if err != nil {
			f.Close()
			return nil, err
		}
		shared = nc
		f.conns = append(f.conns, nc)
	}
	for _, s := range sites {
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, fmt.Errorf("start lab fleet: %w", err)
		}
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			id := events.NodeID(s.ID, role)
			addr := s.PBXAddress
			if role == events.RoleOML {
				addr = s.OMLAddress
			}
			confDir := filepath.Join(opts.Dir, id, "etc")
			if err := lab.WriteStockFiles(confDir, lab.Role(role), addr, s.Profile); err != nil {
				f.Close()
				return nil, fmt.Errorf("start lab fleet: %w", err)
			}
			host, err := lab.NewHost(lab.Config{
				Role: lab.Role(role), Name: id, ConfigDir: confDir, Address: addr,
				Instant: opts.Instant, Network: network, QualifyTimeout: opts.QualifyTimeout, SIPReloadLag: opts.SIPReloadLag,
				Logger: log.With("lab", id),
			})
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("start lab fleet: %w", err)
			}
			if err := host.Start(ctx); err != nil {
				f.Close()
				return nil, fmt.Errorf("start lab fleet: %w", err)
			}
			f.hosts[id] = host
			f.dirs[id] = confDir

			nc := shared
			if nc == nil {
				if nc, err = connect(opts.NATSURL, "lab agent "+id); err != nil {
					f.Close()
					return nil, err
				}
				f.conns = append(f.conns, nc)
			}
			side, _ := node.SideFor(role)
			statusEvery := opts.StatusInterval
			if statusEvery == 0 {
				statusEvery = 5 * time.Second
			}
			agentOpts := []node.Option{node.WithLogger(log), node.WithVersion("lab")}
			if opts.KeyDir != "" {
				opener, err := node.LoadSecretOpener(filepath.Join(opts.KeyDir, id+".xk"))
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("start lab fleet: %w", err)
				}
				agentOpts = append(agentOpts, node.WithSecretOpener(opener))
			}
			if opts.OMLObjects && role == events.RoleOML {
				app := lab.NewOMLApp(confDir)
				app.AttachHost(host)
				for _, did := range opts.InboundDIDs {
					app.AddInboundRoute(did)
				}
				objs, err := omlobjects.New(omlobjects.Config{Deployment: omlobjects.KindPodman2x, RouteProbe: true}, app.Run)
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("start lab fleet: %w", err)
				}
				f.apps[id] = app
				agentOpts = append(agentOpts, node.WithObjects(objs))
			}
			agent, err := node.New(node.Config{
				Node: id, ConfigDir: confDir, StateDir: filepath.Join(opts.Dir, id, "state"),
				Deadlines: opts.Deadlines, PollInterval: opts.PollInterval, StatusInterval: statusEvery,
			}, side, host, nc, agentOpts...)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("start lab fleet: %w", err)
			}
			f.agents[id] = agent
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				if err := agent.Run(runCtx); err != nil {
					f.errMu.Lock()
					f.errs = append(f.errs, err)
					f.errMu.Unlock()
				}
			}()
		}
	}
	return f, nil
}

func connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect %s to %s: %w", name, url, err)
	}
	return nc, nil
}

// Host returns the lab host of a node id, or nil.
func (f *Fleet) Host(nodeID string) *lab.Host { return f.hosts[nodeID] }

// OMLApp returns the OMniLeads stand-in of an OMniLeads node id (OMLObjects), or nil.
func (f *Fleet) OMLApp(nodeID string) *lab.OMLApp { return f.apps[nodeID] }

// ConfigDir returns the config dir (the lab's /etc/asterisk) of a node id.
func (f *Fleet) ConfigDir(nodeID string) string { return f.dirs[nodeID] }

// Agent returns the agent of a node id, or nil.
func (f *Fleet) Agent(nodeID string) *node.Agent { return f.agents[nodeID] }

// Close stops the agents, then the lab hosts and connections, and returns any
// error an agent ended with.
func (f *Fleet) Close() error {
	f.cancel()
	f.wg.Wait()
	var errs []error
	for _, h := range f.hosts {
		if err := h.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, nc := range f.conns {
		nc.Close()
	}
	f.errMu.Lock()
	errs = append(errs, f.errs...)
	f.errMu.Unlock()
	return errors.Join(errs...)
}
