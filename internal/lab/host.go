// Package lab is an honest in-process stand-in for one Asterisk host, for demos,
// tests and benchmarks on machines without Asterisk. A lab host reads the very
// .conf files an agent writes (with an Asterisk-compatible parser), binds the SIP
// listeners they declare on loopback, qualifies its peers with real SIP OPTIONS
// over UDP, answers digest-authenticated INVITEs per the configured credentials,
// and answers the CLI commands the agents use (`asterisk -rx`) with text in the
// format of Asterisk 20.20.1 (checked against the captures in internal/testfixtures).
// It is never presented as Asterisk: it is "the lab".
//
// Role "pbx" plays an Issabel PBX (chan_sip, sip.conf); role "oml" plays
// OMniLeads (res_pjsip, pjsip.conf transports and pjsip_wizard.conf trunks). Both
// load extensions.conf. The running configuration changes only on Start and on the
// reload commands, as in Asterisk.
package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Role says which Asterisk a lab host plays.
type Role string

// The two roles.
const (
	// RolePBX is an Issabel PBX: chan_sip, sip.conf.
	RolePBX Role = "pbx"
	// RoleOML is OMniLeads: res_pjsip, pjsip.conf + pjsip_wizard.conf.
	RoleOML Role = "oml"
)

// Fault is a failure injected into a lab host.
type Fault int

// The fault knobs.
const (
	// FaultNone: the host behaves normally.
	FaultNone Fault = iota
	// FaultStopped: Asterisk is not running. The CLI answers "Unable to connect to
	// remote asterisk ..." with exit code 1 and SIP is silent. Clearing it restarts
	// the host: configuration is read again and qualify states start over.
	FaultStopped
	// FaultSIPDropped: the CLI works, but no SIP packet is answered and none is sent.
	FaultSIPDropped
	// FaultStale: reload commands print what they always print, but the running
	// configuration does not change (docs/asterisk.md#reloads-and-cli-replies).
	FaultStale
)

// String returns the knob's name.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultStopped:
		return "stopped"
	case FaultSIPDropped:
		return "sip-dropped"
	case FaultStale:
		return "stale"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// DefaultQualifyTimeout is how long a qualify waits for any reply.
const DefaultQualifyTimeout = 2 * time.Second

// DefaultSIPReloadLag is how long a lab `sip reload` takes to land after the
// command returned: long enough that a caller that reads `sip show peer` once
// right after the reload sees the old configuration, as on a real PBX with
// thousands of peers.
const DefaultSIPReloadLag = 150 * time.Millisecond

// Config configures one lab host. The zero value of every optional field means its
// default.
type Config struct {
	// Role is RolePBX or RoleOML.
	Role Role
	// Name identifies the host in logs, e.g. "bsas-1.pbx".
	Name string
	// ConfigDir is the host's /etc/asterisk.
	ConfigDir string
	// Address is the host's loopback IP, e.g. 127.0.1.2. Listeners the config binds
	// to the wildcard bind this address instead; the lab never leaves loopback.
	Address string
	// Instant makes checks instant: qualify and probe outcomes are computed from the
	// two hosts' running configurations through Network, with no SIP packets and no
	// sockets (for the orchestration-overhead benchmark). Everything else is
	// identical.
	Instant bool
	// Network lets Instant hosts find each other by address:port. Required when
	// Instant; ignored otherwise.
	Network *Network
	// QualifyTimeout is how long a qualify waits for a reply before the peer is
	// UNREACHABLE / the contact Unavail. Default DefaultQualifyTimeout.
	QualifyTimeout time.Duration
	// SIPReloadLag is how long after `sip reload` returns the new sip.conf
	// takes effect (chan_sip reloads in its monitor thread, after the
	// command has returned). Default DefaultSIPReloadLag; negative: at once.
	SIPReloadLag time.Duration
	// Logger receives the host's log ("NOTICE"-like lines); nil discards.
	Logger *slog.Logger
}

// Validate returns every problem of the configuration, joined, each wrapping
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	if c.Role != RolePBX && c.Role != RoleOML {
		errs = append(errs, fmt.Errorf("%w: role %q (want pbx or oml)", ErrInvalidConfig, c.Role))
	}
	if c.ConfigDir == "" {
		errs = append(errs, fmt.Errorf("%w: config dir is empty", ErrInvalidConfig))
	}
	if ip, err := netip.ParseAddr(c.Address); err != nil || !ip.Is4() || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("%w: address %q is not an IPv4 loopback address", ErrInvalidConfig, c.Address))
	}
	if c.Instant && c.Network == nil {
		errs = append(errs, fmt.Errorf("%w: instant mode needs a Network", ErrInvalidConfig))
	}
	if c.QualifyTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative qualify timeout", ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// running is the configuration Asterisk has loaded: it changes only on Start, on a
// restart and on the reload commands.
type running struct {
	sip *sipConfig   // PBX only; nil when sip.conf failed to load
	pj  *pjsipConfig // OML only; nil when pjsip.conf failed to load
	dp  *dialplan    // nil when extensions.conf failed to load
}

type hostState int

const (
	stateNew hostState = iota
	stateStarted
	stateClosed
)

// Host is one lab Asterisk. It is safe for concurrent use.
type Host struct {
	cfg  Config
	log  *slog.Logger
	addr netip.Addr
	// nonceKey signs digest nonces so they need no server-side state.
	nonceKey [16]byte

	// lifeCtx lives until Close; runCtx until the next stop (FaultStopped) or Close.
	lifeCtx    context.Context
	lifeCancel context.CancelFunc
	wg         sync.WaitGroup
	kick       chan struct{}
	// lifeMu serialises Start, Close and SetFault (which may re-bind on restart).
	lifeMu sync.Mutex
	// reloadMu keeps asynchronous reloads in the order they were asked;
	// reloading counts those not landed yet (tests wait on it).
	reloadMu  sync.Mutex
	reloading sync.WaitGroup
	// authFailures counts requests refused for their credentials.
	authFailures atomic.Int64

	mu        sync.Mutex
	state     hostState
	fault     Fault
	run       running
	runCtx    context.Context
	runCancel context.CancelFunc
	// gen counts qualify target sets; results of an older set are dropped.
	gen      uint64
	targets  map[string]*qualifyState
	db       map[string]string
	dialogs  map[string]*dialog
	chanSeq  uint32
	sip      *sipStack
	binds    []netip.AddrPort
	netBound []netip.AddrPort
}

// NewHost returns a lab host that is not running yet, or an error wrapping
// ErrInvalidConfig.
func NewHost(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new lab host %s: %w", cfg.Name, err)
	}
	if cfg.QualifyTimeout == 0 {
		cfg.QualifyTimeout = DefaultQualifyTimeout
	}
	switch {
	case cfg.SIPReloadLag == 0:
		cfg.SIPReloadLag = DefaultSIPReloadLag
	case cfg.SIPReloadLag < 0:
		cfg.SIPReloadLag = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Host{
		cfg:     cfg,
		log:     log.With("lab_host", cfg.Name, "role", string(cfg.Role)),
		addr:    netip.MustParseAddr(cfg.Address),
		kick:    make(chan struct{}, 1),
		targets: map[string]*qualifyState{},
		db:      map[string]string{},
		dialogs: map[string]*dialog{},
	}
	if _, err := rand.Read(h.nonceKey[:]); err != nil {
		return nil, fmt.Errorf("new lab host %s: nonce key: %w", cfg.Name, err)
	}
	h.lifeCtx, h.lifeCancel = context.WithCancel(context.Background())
	return h, nil
}

// Start is "Asterisk starts": it reads the configuration, binds the SIP listeners
// it declares (or registers them in the Network in Instant mode) and starts the
// qualify loop. A configuration file that fails to parse leaves its module empty,
// as Asterisk does; Start fails only when the host cannot run at all (config dir
// missing, a listener cannot bind, started twice, closed). ctx bounds the start
// only: the host runs until Close.
func (h *Host) Start(ctx context.Context) error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start lab host %s: %w", h.cfg.Name, err)
	}
	if st, err := os.Stat(h.cfg.ConfigDir); err != nil || !st.IsDir() {
		return fmt.Errorf("start lab host %s: config dir %s: %w", h.cfg.Name, h.cfg.ConfigDir, os.ErrNotExist)
	}
	h.mu.Lock()
	switch h.state {
	case stateStarted:
		h.mu.Unlock()
		return fmt.Errorf("start lab host %s: already started", h.cfg.Name)
	case stateClosed:
		h.mu.Unlock()
		return fmt.Errorf("start lab host %s: %w", h.cfg.Name, ErrClosed)
	}
	h.mu.Unlock()

	run := h.loadAll()
	binds := h.bindAddrs(run)
	if h.cfg.Instant {
		if err := h.cfg.Network.register(binds, h); err != nil {
			return fmt.Errorf("start lab host %s: %w", h.cfg.Name, err)
		}
	} else {
		stack, err := h.startSIP(binds)
		if err != nil {
			return fmt.Errorf("start lab host %s: %w", h.cfg.Name, err)
		}
		h.mu.Lock()
		h.sip = stack
		h.mu.Unlock()
	}
	h.mu.Lock()
	h.state = stateStarted
	h.binds = binds
	if h.cfg.Instant {
		h.netBound = binds
	}
	h.run = run
	h.runCtx, h.runCancel = context.WithCancel(h.lifeCtx)
	h.resetTargetsLocked()
	h.wg.Add(1)
	h.mu.Unlock()
	go h.qualifyLoop()
	h.log.Info("lab host started", "binds", fmt.Sprint(binds), "instant", h.cfg.Instant)
	return nil
}

// Close stops the host and releases every socket and goroutine it started. It is
// safe to call more than once.
func (h *Host) Close() error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	h.mu.Lock()
	if h.state == stateClosed {
		h.mu.Unlock()
		return nil
	}
	h.state = stateClosed
	stack := h.sip
	h.sip = nil
	bound := h.netBound
	h.netBound = nil
	h.mu.Unlock()

	h.lifeCancel()
	// Every call, qualify and handler ends first: one still sending after the
	// listeners closed would make sipgo open a socket of its own, which nothing
	// closes (seen as a goroutine left reading it).
	h.wg.Wait()
	var err error
	if stack != nil {
		err = stack.close()
	}
	if bound != nil {
		h.cfg.Network.unregister(bound, h)
	}
	if err != nil {
		return fmt.Errorf("close lab host %s: %w", h.cfg.Name, err)
	}
	return nil
}

// SetFault injects (or, with FaultNone, clears) a fault. Leaving FaultStopped is an
// Asterisk restart: configuration is read again, listeners are re-bound when the
// configuration now declares others, and qualify states start over (AstDB stays).
func (h *Host) SetFault(f Fault) {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	h.mu.Lock()
	prev := h.fault
	h.fault = f
	started := h.state == stateStarted
	if !started || prev == f {
		h.mu.Unlock()
		return
	}
	if f == FaultStopped {
		// Asterisk stops: every call and pending qualify dies with it.
		h.runCancel()
		h.mu.Unlock()
		h.log.Info("lab host stopped (fault)")
		return
	}
	if prev != FaultStopped {
		h.mu.Unlock()
		h.poke()
		return
	}
	h.mu.Unlock()

	run := h.loadAll()
	h.rebind(h.bindAddrs(run))
	h.mu.Lock()
	h.run = run
	h.runCtx, h.runCancel = context.WithCancel(h.lifeCtx)
	h.resetTargetsLocked()
	h.mu.Unlock()
	h.poke()
	h.log.Info("lab host restarted (fault cleared)", "fault", f.String())
}

// rebind makes the bound listeners those of binds; a listener that cannot be bound
// is logged and left out, as Asterisk starts without it. lifeMu is held.
func (h *Host) rebind(binds []netip.AddrPort) {
	h.mu.Lock()
	old, stack := h.binds, h.sip
	h.mu.Unlock()
	if slices.Equal(old, binds) {
		return
	}
	if h.cfg.Instant {
		h.cfg.Network.unregister(old, h)
		if err := h.cfg.Network.register(binds, h); err != nil {
			h.log.Error("restart: cannot bind", "error", err)
			binds = nil
		}
		h.mu.Lock()
		h.binds, h.netBound = binds, binds
		h.mu.Unlock()
		return
	}
	h.mu.Lock()
	h.sip, h.binds = nil, nil
	h.mu.Unlock()
	if stack != nil {
		if err := stack.closeListeners(); err != nil {
			h.log.Warn("restart: closing old listeners", "error", err)
		}
		// A call or qualify still sending through the old stack ends with
		// the host's run at the latest (Close waits for h.wg); its user
		// agent, and any socket sipgo opened for it, close after it.
		retired := stack
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			retired.users.Wait()
			if err := retired.ua.Close(); err != nil {
				h.log.Debug("restart: closing the old user agent", "error", err)
			}
		}()
	}
	stack, err := h.startSIP(binds)
	if err != nil {
		h.log.Error("restart: cannot bind", "error", err)
		return
	}
	h.mu.Lock()
	h.sip, h.binds = stack, binds
	h.mu.Unlock()
}

// Name returns the host's configured name.
func (h *Host) Name() string { return h.cfg.Name }

// loadAll reads every module's configuration from disk, logging (not failing on)
// files that do not parse, as Asterisk does at start.
func (h *Host) loadAll() running {
	var run running
	var warnings []string
	var err error
	if h.cfg.Role == RolePBX {
		if run.sip, warnings, err = loadSIP(h.cfg.ConfigDir, h.addr); err != nil {
			h.log.Error("chan_sip: sip.conf rejected, no peers loaded", "error", err)
		}
		h.logWarnings("sip.conf", warnings)
	} else {
		if run.pj, warnings, err = loadPJSIP(h.cfg.ConfigDir, h.addr); err != nil {
			h.log.Error("res_pjsip: configuration rejected, no objects loaded", "error", err)
		}
		h.logWarnings("pjsip", warnings)
	}
	if run.dp, warnings, err = loadDialplan(h.cfg.ConfigDir); err != nil {
		h.log.Error("pbx_config: extensions.conf rejected, empty dialplan", "error", err)
	}
	h.logWarnings("extensions.conf", warnings)
	return run
}

func (h *Host) logWarnings(what string, warnings []string) {
	for _, w := range warnings {
		h.log.Warn(what + ": " + w)
	}
}

// bindAddrs lists the UDP listeners the configuration declares.
func (h *Host) bindAddrs(run running) []netip.AddrPort {
	var out []netip.AddrPort
	if run.sip != nil {
		out = append(out, run.sip.bind)
	}
	if run.pj != nil {
		for _, t := range run.pj.transports {
			if t.protocol == "udp" && !containsAddrPort(out, t.bind) {
				out = append(out, t.bind)
			}
		}
	}
	return out
}

// snapshot returns the running configuration and the fault under the lock.
func (h *Host) snapshot() (running, Fault, hostState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.run, h.fault, h.state
}

// silent reports whether SIP is dead on this host (not running, stopped, dropped).
func (h *Host) silent() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state != stateStarted || h.fault == FaultStopped || h.fault == FaultSIPDropped
}

// goTracked runs f in a goroutine that Close waits for; it reports false (and does
// not run f) once the host is closing.
func (h *Host) goTracked(f func()) bool {
	h.mu.Lock()
	if h.state == stateClosed {
		h.mu.Unlock()
		return false
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		f()
	}()
	return true
}

// enter marks a handler running on a goroutine someone else started (sipgo's);
// leave must follow when it reports true.
func (h *Host) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateStarted {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Host) leave() { h.wg.Done() }

// runContext is the context calls and qualifies of the current run live in.
func (h *Host) runContext() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runCtx == nil {
		return h.lifeCtx
	}
	return h.runCtx
}

// localFor returns the listener a request to dest leaves from: the named pjsip
// transport, else the first listener.
func (h *Host) localFor(run running, transport string) (netip.AddrPort, bool) {
	if run.sip != nil {
		return run.sip.bind, true
	}
	if run.pj != nil {
		if t := run.pj.transport(transport); t != nil && t.protocol == "udp" {
			return t.bind, true
		}
		for _, t := range run.pj.transports {
			if t.protocol == "udp" {
				return t.bind, true
			}
		}
	}
	return netip.AddrPort{}, false
}

func containsAddrPort(list []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
