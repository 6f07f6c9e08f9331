package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labctl"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// Busybox-style names the pbxfleet binary answers to (see shimMain).
const (
	shimAsterisk = "asterisk"
	shimDocker   = "docker"
)

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// labFleetFile and labAgentsDir are what `pbxlab lab FLEET.yaml --dir DIR`
// writes under DIR.
const (
	labFleetFile = "fleet.lab.yaml"
	labAgentsDir = "agents"
	labHostsDir  = "hosts"
)

// mainConfFile is the file whose presence means a config dir was set up already.
var mainConfFile = map[lab.Role]string{lab.RolePBX: "sip.conf", lab.RoleOML: "pjsip.conf"}

// labCommand holds the flag values of `pbxlab lab FLEET.yaml`.
type labCommand struct {
	dir               string
	natsURL           string
	acceptWeakSecrets bool
	logLevel          string
	// self is the path of this pbxfleet binary, written into the agents'
	// command prefix; os.Executable by default.
	self string
	// ready, when set, receives the lab once every host serves its CLI (tests).
	ready func(labFleet)
}

// labHostCommand holds the flag values of `pbxlab lab host`.
type labHostCommand struct {
	role      string
	address   string
	configDir string
	profile   string
	ctl       string
	name      string
	stock     bool
	logLevel  string
	// ready, when set, is called once the host serves its CLI (tests).
	ready func()
}

// newLabCommand returns the `pbxlab lab` command group: run lab hosts (the
// in-process Asterisk stand-in) for a whole fleet or one at a time, and talk to
// their CLI like `asterisk -rx`.
func newLabCommand() *cobra.Command {
	c := &labCommand{}
	cmd := &cobra.Command{
		Use:   "lab FLEET.yaml --dir DIR",
		Short: "Run lab hosts (an Asterisk stand-in) for a fleet, one host, or talk to one",
		Long: `lab runs the pbxfleet lab: an in-process stand-in for Asterisk that reads the very
files the agents write, binds the SIP listeners they declare on loopback, qualifies with
real SIP OPTIONS, answers digest-authenticated calls, and answers the CLI commands the
agents use in Asterisk 20's format. It is not Asterisk.

With a fleet file, lab starts one PBX and one OMniLeads lab host for every site on its
own loopback addresses (site n: PBX 127.1.n.2, OMniLeads 127.1.n.3; in the docker
scenario OMniLeads shares the PBX address), each with its own config dir and control
socket under DIR. It writes DIR/fleet.lab.yaml (the same fleet with the lab addresses)
and one agent config per node in DIR/agents/, prints how to start the agents and roll
out, and runs until interrupted. Files already set up in DIR are kept, so a restarted
lab keeps what the agents applied; remove DIR to start over.

"lab host" runs a single lab host on a control socket (for containers), and "lab rx" is
the "asterisk -rx" client. The pbxfleet binary called as "asterisk" behaves like
"pbxlab lab rx --socket /var/run/asterisk/asterisk.ctl".`,
		Example: `  # A lab for the example fleet, then the agents and a rollout (see what it prints)
  pbxlab lab examples/fleet.yaml --dir /tmp/lab

  # One lab host in a container, its CLI on the default control socket
  pbxlab lab host --role pbx --address 127.0.1.2 --config-dir /etc/asterisk --stock

  # asterisk -rx against it
  pbxlab lab rx sip show peers`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	natsURL := os.Getenv("NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	f := cmd.Flags()
	f.StringVar(&c.dir, "dir", "", "directory for the lab's config dirs, sockets, agent configs and state (required)")
	f.StringVar(&c.natsURL, "nats-url", natsURL, "NATS URL written into the agent configs (default $NATS_URL or the local `pbxfleet serve`)")
	f.BoolVar(&c.acceptWeakSecrets, "accept-weak-secrets", false, "accept well-known and short secrets, with a warning (labs only)")
	f.StringVar(&c.logLevel, "log-level", "info", "lab log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("dir")
	cmd.AddCommand(newLabHostCommand(), newLabRxCommand())
	return cmd
}

func newLabHostCommand() *cobra.Command {
	c := &labHostCommand{}
	cmd := &cobra.Command{
		Use:   "host --role pbx|oml --address ADDR --config-dir DIR",
		Short: "Run one lab host and serve its CLI on a control socket until stopped",
		Long: `host runs one lab host (role pbx: an Issabel-like chan_sip host; role oml: an
OMniLeads-like pjsip host) on the configuration in --config-dir, and serves its CLI on
the control socket --ctl, where "pbxlab lab rx" and the "asterisk" shim reach it. It
runs until SIGTERM or SIGINT.

The lab binds only loopback addresses. In containers, give each lab host a loopback
address (127.0.n.2, 127.0.n.3) and let the two lab hosts of a site share one network
namespace (docker-compose network_mode: "service:<pbx lab>"); the agents reach the CLI
through the control socket on a shared volume, or with docker exec.

With --stock, a config dir without sip.conf (pbx) or pjsip.conf (oml) first gets the
files of a freshly installed host, bound to --address.`,
		Example: `  pbxlab lab host --role pbx --address 127.0.1.2 --config-dir /etc/asterisk --stock
  pbxlab lab host --role oml --address 127.0.1.3 --config-dir /etc/asterisk --stock --profile 1.x`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.role, "role", "", "pbx (Issabel, chan_sip) or oml (OMniLeads, pjsip) (required)")
	f.StringVar(&c.address, "address", "", "the host's IPv4 loopback address, e.g. 127.0.1.2 (required)")
	f.StringVar(&c.configDir, "config-dir", "", "the host's /etc/asterisk (required)")
	f.StringVar(&c.profile, "profile", "1.x", "OMniLeads transport profile of the stock files: 1.x or 2.x")
	f.StringVar(&c.ctl, "ctl", labctl.DefaultSocket, "control socket to serve the CLI on (its directory is created)")
	f.StringVar(&c.name, "name", "", "name in the log (default the role)")
	f.BoolVar(&c.stock, "stock", false, "write the stock files of a fresh host when the config dir has none")
	f.StringVar(&c.logLevel, "log-level", "info", "lab log level: debug, info, warn or error")
	for _, name := range []string{"role", "address", "config-dir"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newLabRxCommand() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "rx [--socket PATH] COMMAND...",
		Short: "Run one CLI command on a lab host, like asterisk -rx",
		Long: `rx sends one CLI command to the lab host serving the control socket and prints what
it answers, like "asterisk -rx '<command>'": the words are joined with spaces, the exit
status is 0 for every command the host answered (judge by the text, as with Asterisk)
and 1 with "Unable to connect to remote asterisk ..." on stderr when nothing serves
the socket.`,
		Example: `  pbxlab lab rx --socket /tmp/lab/hosts/bsas-1.pbx/asterisk.ctl sip show peers
  pbxlab lab rx 'pjsip show endpoints'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code := labRx(cmd.Context(), socket, strings.Join(args, " "), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != 0 {
				return &opcli.ExitError{Code: code, Err: fmt.Errorf("lab rx: exit status %d", code)}
			}
			return nil
		},
	}
	// Everything after the first word is the command, even when it looks like a flag.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&socket, "socket", labctl.DefaultSocket, "the lab host's control socket")
	return cmd
}

// labRx runs command on the lab host serving socket, prints its output (on
// stdout, or on stderr when the exit status is not 0, as asterisk -rx prints
// "Unable to connect ...") and returns the exit status.
func labRx(ctx context.Context, socket, command string, stdout, stderr io.Writer) int {
	out, code, err := labctl.Run(ctx, socket, command)
	if err != nil {
		fmt.Fprintf(stderr, "lab rx: %v\n", err)
		return 1
	}
	w := stdout
	if code != 0 {
		w = stderr
	}
	if _, err := io.WriteString(w, out); err != nil {
		return 1
	}
	return code
}

// shimMain runs the pbxfleet binary as the program it was invoked as, busybox
// style: as "asterisk", `asterisk -rx COMMAND` is `pbxlab lab rx --socket
// /var/run/asterisk/asterisk.ctl COMMAND`; as "docker", `docker exec CONTAINER
// CMD...` runs CMD in a container through the Docker Engine API socket. It
// reports handled=false, and does nothing, for any other name; otherwise code
// is the exit status main should exit with. main calls it first:
//
//	if handled, code := shimMain(os.Args); handled {
//		os.Exit(code)
//	}
func shimMain(args []string) (handled bool, code int) {
	if len(args) == 0 {
		return false, 0
	}
	name := filepath.Base(args[0])
	if name != shimAsterisk && name != shimDocker {
		return false, 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if name == shimAsterisk {
		return true, asteriskShim(ctx, args[1:], os.Stdout, os.Stderr)
	}
	return true, dockerShim(ctx, args[1:], os.Getenv, os.Stdout, os.Stderr)
}

// asteriskShim is `asterisk` for a lab host: it understands the options of
// Asterisk's own command line that a remote CLI call uses (-r, -x COMMAND, -s
// SOCKET, -v, -q, -n, -c, -C FILE, combined as getopt does: -rx, -rvx) and
// returns the exit status.
func asteriskShim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	socket := labctl.DefaultSocket
	command, haveCommand := "", false
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "asterisk (pbxlab lab shim): %s\n"+
			"This is the pbxlab lab's CLI client, not Asterisk: only `asterisk -rx COMMAND [-s SOCKET]` works.\n", msg)
		return 1
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return usage(fmt.Sprintf("unexpected argument %q", a))
		}
		for j := 1; j < len(a); j++ {
			opt := a[j]
			switch opt {
			case 'r', 'R', 'v', 'q', 'n', 'c', 'd', 'm':
				continue
			case 'V':
				fmt.Fprint(stdout, "pbxfleet lab (Asterisk 20.20.1 CLI format)\n")
				return 0
			case 'x', 's', 'C':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return usage(fmt.Sprintf("option -%c needs a value", opt))
					}
					i++
					val = args[i]
				}
				switch opt {
				case 'x':
					command, haveCommand = val, true
				case 's':
					socket = val
				}
				j = len(a) // the value ended this argument
			default:
				return usage(fmt.Sprintf("unsupported option -%c", opt))
			}
		}
	}
	if !haveCommand {
		return usage("no -x COMMAND")
	}
	return labRx(ctx, socket, command, stdout, stderr)
}

// run starts the one lab host and serves its CLI until ctx ends.
func (c *labHostCommand) run(ctx context.Context, stderr io.Writer) error {
	log, err := labLogger(stderr, c.logLevel)
	if err != nil {
		return opcli.Invalid(fmt.Errorf("lab host: %w", err))
	}
	role := lab.Role(c.role)
	if role != lab.RolePBX && role != lab.RoleOML {
		return opcli.Invalid(fmt.Errorf("lab host: --role %q: want pbx or oml", c.role))
	}
	if err := checkLabAddress(c.address); err != nil {
		return opcli.Invalid(fmt.Errorf("lab host: --address: %w", err))
	}
	if len(c.ctl) > maxSocketPath {
		return opcli.Invalid(fmt.Errorf("lab host: --ctl %s: longer than %d bytes, too long for a Unix socket", c.ctl, maxSocketPath))
	}
	name := c.name
	if name == "" {
		name = c.role
	}
	if c.stock {
		if err := ensureStock(c.configDir, role, c.address, c.profile); err != nil {
			return fmt.Errorf("lab host %s: %w", name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.ctl), 0o755); err != nil {
		return fmt.Errorf("lab host %s: control socket dir: %w", name, err)
	}
	h, err := lab.NewHost(lab.Config{Role: role, Name: name, ConfigDir: c.configDir, Address: c.address, Logger: log})
	if err != nil {
		return opcli.Invalid(fmt.Errorf("lab host: %w", err))
	}
	defer h.Close()
	if err := h.Start(ctx); err != nil {
		return fmt.Errorf("lab host: %w", err)
	}
	log.Info("lab host serving its CLI", "name", name, "role", c.role, "address", c.address,
		"config_dir", c.configDir, "socket", c.ctl)
	return serveHosts(ctx, []servedHost{{socket: c.ctl, host: h}}, log, c.ready)
}

// servedHost is a started lab host and the control socket it is served on.
type servedHost struct {
	socket string
	host   *lab.Host
}

// serveHosts serves every host's CLI on its socket until ctx ends, calls ready
// (if set) once all sockets accept connections, and returns the first serve
// error. The hosts are not closed.
func serveHosts(ctx context.Context, hosts []servedHost, log *slog.Logger, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(hosts))
	var wg sync.WaitGroup
	for _, sh := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := labctl.Serve(ctx, sh.socket, sh.host, log); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	if ready != nil {
		if err := waitSockets(ctx, hosts); err == nil {
			ready()
		}
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	return <-errs // nil when every server stopped cleanly
}

// waitSockets waits until every host's socket answers.
func waitSockets(ctx context.Context, hosts []servedHost) error {
	for _, sh := range hosts {
		for {
			if _, code, err := labctl.Run(ctx, sh.socket, "core show version"); err == nil && code == 0 {
				break
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("wait for %s: %w", sh.socket, err)
			}
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// ensureStock writes the stock files of a fresh host of role into dir unless
// dir already holds the role's main file.
func ensureStock(dir string, role lab.Role, address, profile string) error {
	if _, err := os.Stat(filepath.Join(dir, mainConfFile[role])); err == nil {
		return nil
	}
	if err := lab.WriteStockFiles(dir, role, address, profile); err != nil {
		return fmt.Errorf("stock files: %w", err)
	}
	return nil
}

// checkLabAddress returns an error explaining the lab's loopback-only rule when
// address is not an IPv4 loopback address.
func checkLabAddress(address string) error {
	ip, err := netip.ParseAddr(address)
	if err == nil && ip.Is4() && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not an IPv4 loopback address: the lab binds only loopback (127.0.0.0/8); "+
		"in a container use e.g. 127.0.1.2 and let the site's other lab host share the network namespace", address)
}

// labLogger returns a text logger at level.
func labLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// labNode is one lab host of a fleet lab and the files that go with it.
type labNode struct {
	// Node is the node id, <site>.<role>.
	Node string
	// Role is the lab role.
	Role lab.Role
	// Address is the loopback address the host binds.
	Address string
	// Profile is the OMniLeads transport profile (oml only).
	Profile string
	// ConfigDir, Socket, StateDir and AgentConfig are the host's paths under DIR.
	ConfigDir, Socket, StateDir, AgentConfig string
}

// labFleet is what `pbxlab lab FLEET.yaml` set up.
type labFleet struct {
	// FleetFile is DIR/fleet.lab.yaml.
	FleetFile string
	// Nodes are the lab hosts, two per site in fleet order.
	Nodes []labNode
}

// maxLabSites is how many sites labfleet.Addresses tells apart.
const maxLabSites = 62_500

// run sets up and runs the fleet lab.
func (c *labCommand) run(ctx context.Context, path string, out, errOut io.Writer) error {
	log, err := labLogger(errOut, c.logLevel)
	if err != nil {
		return opcli.Invalid(fmt.Errorf("lab: %w", err))
	}
	self := c.self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("lab: find the pbxlab binary (the agents' asterisk command): %w", err)
		}
	}
	lf, err := setupLabFleet(path, c.dir, c.natsURL, self, planner.Options{AcceptWeakSecrets: c.acceptWeakSecrets})
	if err != nil {
		var ve *planner.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				fmt.Fprintln(errOut, opcli.ProblemLine(path, p))
			}
		}
		return opcli.Invalid(err)
	}
	var served []servedHost
	defer func() {
		for _, sh := range served {
			_ = sh.host.Close()
		}
	}()
	for _, n := range lf.Nodes {
		h, err := lab.NewHost(lab.Config{Role: n.Role, Name: n.Node, ConfigDir: n.ConfigDir, Address: n.Address, Logger: log})
		if err != nil {
			return fmt.Errorf("lab %s: %w", path, err)
		}
		served = append(served, servedHost{socket: n.Socket, host: h})
		if err := h.Start(ctx); err != nil {
			return fmt.Errorf("lab %s: %w", path, err)
		}
	}
	if err := printLabGuide(out, lf, self, c.natsURL, c.acceptWeakSecrets); err != nil {
		return fmt.Errorf("lab %s: %w", path, err)
	}
	var ready func()
	if c.ready != nil {
		ready = func() { c.ready(lf) }
	}
	return serveHosts(ctx, served, log, ready)
}

// setupLabFleet validates the fleet file at path and lays out its lab under dir:
// a config dir with stock files per node (kept when already there), the fleet
// file with the lab addresses, and one agent config per node whose command
// prefix is `self lab rx --socket <socket>`. It returns a *planner.ValidationError
// when the fleet file (or the rewritten one) is invalid.
func setupLabFleet(path, dir, natsURL, self string, opts planner.Options) (labFleet, error) {
	spec, err := planner.Load(path, opts)
	if err != nil {
		return labFleet{}, fmt.Errorf("lab %s: %w", path, err)
	}
	if len(spec.Sites) > maxLabSites {
		return labFleet{}, fmt.Errorf("lab %s: %d sites: the lab has loopback addresses for %d", path, len(spec.Sites), maxLabSites)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return labFleet{}, fmt.Errorf("lab %s: --dir: %w", path, err)
	}
	lf := labFleet{FleetFile: filepath.Join(dir, labFleetFile)}
	addrs := make(map[string][2]string, len(spec.Sites))
	for i, site := range spec.Sites {
		// The same plan of loopback addresses as the demo and the benchmark.
		pbxAddr, omlAddr := labfleet.Addresses(i)
		if site.Trunk.Scenario == asterisk.ScenarioDocker {
			// OMniLeads runs in Docker on the PBX host (docs/asterisk.md#scenarios-and-ports).
			omlAddr = pbxAddr
		}
		addrs[site.ID] = [2]string{pbxAddr, omlAddr}
		for _, n := range []struct {
			role lab.Role
			addr string
		}{{lab.RolePBX, pbxAddr}, {lab.RoleOML, omlAddr}} {
			id := events.NodeID(site.ID, string(n.role))
			host := filepath.Join(dir, labHostsDir, id)
			ln := labNode{
				Node: id, Role: n.role, Address: n.addr, Profile: site.Profile,
				ConfigDir:   filepath.Join(host, "etc"),
				Socket:      filepath.Join(host, "asterisk.ctl"),
				StateDir:    filepath.Join(host, "state"),
				AgentConfig: filepath.Join(dir, labAgentsDir, id+".yaml"),
			}
			if len(ln.Socket) > maxSocketPath {
				return labFleet{}, fmt.Errorf("lab %s: control socket %s is longer than %d bytes: use a shorter --dir", path, ln.Socket, maxSocketPath)
			}
			lf.Nodes = append(lf.Nodes, ln)
		}
	}
	labYAML, err := rewriteFleetForLab(path, addrs)
	if err != nil {
		return labFleet{}, err
	}
	if err := os.MkdirAll(filepath.Join(dir, labAgentsDir), 0o755); err != nil {
		return labFleet{}, fmt.Errorf("lab %s: %w", path, err)
	}
	if err := os.WriteFile(lf.FleetFile, labYAML, 0o644); err != nil {
		return labFleet{}, fmt.Errorf("lab %s: write %s: %w", path, lf.FleetFile, err)
	}
	// The rewritten file must plan as the original did, with the lab addresses.
	if _, err := planner.Load(lf.FleetFile, opts); err != nil {
		return labFleet{}, fmt.Errorf("lab %s: the lab fleet file %s: %w", path, lf.FleetFile, err)
	}
	for _, n := range lf.Nodes {
		if err := ensureStock(n.ConfigDir, n.Role, n.Address, n.Profile); err != nil {
			return labFleet{}, fmt.Errorf("lab %s: %s: %w", path, n.Node, err)
		}
		if err := os.MkdirAll(n.StateDir, 0o700); err != nil {
			return labFleet{}, fmt.Errorf("lab %s: %s: %w", path, n.Node, err)
		}
		if err := writeLabAgentConfig(n, natsURL, self, opts.AcceptWeakSecrets); err != nil {
			return labFleet{}, fmt.Errorf("lab %s: %w", path, err)
		}
	}
	return lf, nil
}

// labAgentConfig is the part of node.Config a lab agent needs; the agents read
// it with node.LoadConfig.
type labAgentConfig struct {
	Node      string       `yaml:"node"`
	NATS      labAgentNATS `yaml:"nats"`
	ConfigDir string       `yaml:"config_dir"`
	Command   []string     `yaml:"command"`
	StateDir  string       `yaml:"state_dir"`
	// AcceptWeakSecrets is set when the lab accepts weak secrets: an agent
	// writes one only when its own configuration says so.
	AcceptWeakSecrets bool `yaml:"accept_weak_secrets,omitempty"`
}

type labAgentNATS struct {
	URL string `yaml:"url"`
}

func writeLabAgentConfig(n labNode, natsURL, self string, acceptWeak bool) error {
	cfg := labAgentConfig{
		Node:              n.Node,
		NATS:              labAgentNATS{URL: natsURL},
		ConfigDir:         n.ConfigDir,
		Command:           []string{self, "lab", "rx", "--socket", n.Socket},
		StateDir:          n.StateDir,
		AcceptWeakSecrets: acceptWeak,
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("agent config %s: %w", n.Node, err)
	}
	header := fmt.Sprintf("# Agent config of %s for the pbxfleet lab (written by `pbxlab lab`).\n", n.Node)
	if err := os.WriteFile(n.AgentConfig, append([]byte(header), data...), 0o644); err != nil {
		return fmt.Errorf("agent config %s: %w", n.Node, err)
	}
	return nil
}

// rewriteFleetForLab returns the fleet file at path with every site's addresses
// replaced by its lab addresses (addrs[site] = {pbx, oml}) and every relative
// file: secret made absolute, comments and layout kept.
func rewriteFleetForLab(path string, addrs map[string][2]string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("lab %s: %w", path, err)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("lab %s: not a fleet file", path)
	}
	root := doc.Content[0]
	absSecret(mapValue(mapValue(root, "defaults"), "secret"), base)
	sites := mapValue(root, "sites")
	if sites == nil {
		return nil, fmt.Errorf("lab %s: no sites", path)
	}
	for _, site := range sites.Content {
		id := mapValue(site, "id")
		if id == nil {
			continue
		}
		a, ok := addrs[id.Value]
		if !ok {
			continue
		}
		absSecret(mapValue(site, "secret"), base)
		setMapValue(ensureMap(site, "pbx"), "address", a[0])
		oml := mapValue(site, "oml")
		if a[1] != a[0] || (oml != nil && mapValue(oml, "address") != nil) {
			setMapValue(ensureMap(site, "oml"), "address", a[1])
		}
	}
	out, err := yamlEncode(&doc)
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", path, err)
	}
	header := fmt.Sprintf("# The fleet of %s with the pbxlab lab's loopback addresses (written by `pbxlab lab`).\n", path)
	return append([]byte(header), out...), nil
}

func yamlEncode(doc *yaml.Node) ([]byte, error) {
	var sb strings.Builder
	enc := yaml.NewEncoder(&sb)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return []byte(sb.String()), nil
}

// absSecret makes a relative file: secret reference absolute against base.
func absSecret(n *yaml.Node, base string) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	rel, ok := strings.CutPrefix(n.Value, "file:")
	if !ok || filepath.IsAbs(rel) {
		return
	}
	n.Value = "file:" + filepath.Join(base, rel)
	n.Style = 0
}

// mapValue returns the value node of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// ensureMap returns the mapping under key in m, adding an empty one if needed.
func ensureMap(m *yaml.Node, key string) *yaml.Node {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.MappingNode {
		return v
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	setNode(m, key, v)
	return v
}

// setMapValue sets key in mapping m to the string scalar value.
func setMapValue(m *yaml.Node, key, value string) {
	setNode(m, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

func setNode(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// rolloutLine is the command that rolls the lab fleet out; a lab started with
// weak secrets needs them accepted by the rollout too (the orchestrator checks).
func rolloutLine(fleetFile, natsURL string, acceptWeakSecrets bool) string {
	line := "pbxfleet rollout start " + fleetFile + " --nats-url " + natsclient.RedactURLs(natsURL)
	if acceptWeakSecrets {
		line += " --accept-weak-secrets"
	}
	return line
}

// printLabGuide tells the operator what runs where and how to go on.
// self is this pbxlab binary; the control plane and the rollout are the
// operator's pbxfleet.
func printLabGuide(w io.Writer, lf labFleet, self, natsURL string, acceptWeakSecrets bool) error {
	ew := opcli.NewErrWriter(w)
	ew.Printf("pbxlab lab: %d lab hosts (an Asterisk stand-in, not Asterisk)\n", len(lf.Nodes))
	for _, n := range lf.Nodes {
		ew.Printf("  %-24s %-10s config %s\n  %-24s %-10s socket %s\n", n.Node, n.Address, n.ConfigDir, "", "", n.Socket)
	}
	ew.Printf("\nfleet file with the lab addresses: %s\n", lf.FleetFile)
	ew.Printf("agent configs (NATS %s): %s\n", natsURL, filepath.Dir(lf.Nodes[0].AgentConfig))
	ew.Printf("\nIn other terminals:\n")
	ew.Printf("  pbxfleet serve               # NATS with JetStream and the control plane, unless one runs at %s\n", natsURL)
	for _, n := range lf.Nodes {
		program := "pbx-node"
		if n.Role == lab.RoleOML {
			program = "agents-node"
		}
		ew.Printf("  %-11s --config %s &\n", program, n.AgentConfig)
	}
	ew.Printf("  %s\n", rolloutLine(lf.FleetFile, natsURL, acceptWeakSecrets))
	ew.Printf("\nAsk a lab host directly, e.g.:\n  %s lab rx --socket %s sip show peers\n", self, lf.Nodes[0].Socket)
	ew.Printf("\nThe lab runs until interrupted (Ctrl-C).\n")
	return ew.Err()
}
