// Package node is the agent runtime shared by pbx-node (Issabel, chan_sip) and
// agents-node (OMniLeads, pjsip): it watches the node's own desired-state key,
// renders the intent into the node's managed files, writes them atomically,
// reloads Asterisk, verifies the trunk (qualify and a probe call), rolls back on
// failure, and reports results, status and drift over NATS.
package node

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// Config is the agent's local configuration file. Paths and commands come only
// from here, never from the wire (docs/design.md#the-node-agent). The zero value
// of every optional field means its default.
type Config struct {
	// Node is the node id, <site>.<role> (e.g. bsas-1.pbx); the role picks the side.
	Node string `yaml:"node"`
	// NATS says how to reach the bus.
	NATS NATSConfig `yaml:"nats"`
	// ConfigDir is the Asterisk configuration directory; default /etc/asterisk.
	ConfigDir string `yaml:"config_dir"`
	// Files overrides the managed file names (defaults per side in internal/asterisk).
	Files FileNames `yaml:"files"`
	// Command is the argv prefix that runs one CLI command: the command text is
	// appended as the last argument. Default ["asterisk", "-rx"]; for OMniLeads in
	// Docker ["docker", "exec", "oml-asterisk-prodenv", "asterisk", "-rx"].
	Command []string `yaml:"command"`
	// StateDir keeps the journal, the previous bytes and the result outbox;
	// default /var/lib/pbxfleet/<node>.
	StateDir string `yaml:"state_dir"`
	// Deadlines bound each phase of an apply.
	Deadlines Deadlines `yaml:"deadlines"`
	// StatusInterval is how often status (trunk state, drift) is refreshed; default 15s.
	StatusInterval time.Duration `yaml:"status_interval"`
	// PollInterval is how often qualify and probe results are polled; default 250ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// OpenSecretKeyFile is the node's curve seed that opens sealed trunk secrets.
	OpenSecretKeyFile string `yaml:"secret_key_file"`
	// MetricsListen, when set (e.g. 127.0.0.1:9310), serves Prometheus metrics.
	MetricsListen string `yaml:"metrics_listen"`
	// AcceptWeakSecrets lets the agent write a weak trunk secret (well known,
	// short; internal/secretpolicy), for labs only. Off, such a desired state is
	// rejected before anything is written; key material is rejected always.
	AcceptWeakSecrets bool `yaml:"accept_weak_secrets"`
	// OMniLeads (agents-node only) says how OMniLeads is deployed: custom-file
	// (the default: the trunk is a section of the managed wizard file) or a
	// deployment whose trunk and routes are OMniLeads objects (docs/omnileads.md).
	OMniLeads omlobjects.Config `yaml:"omnileads"`
}

// NATSConfig is the agent's NATS connection.
type NATSConfig struct {
	URL       string `yaml:"url"`
	CredsFile string `yaml:"creds"`
	NKeyFile  string `yaml:"nkey"`
	TLSCA     string `yaml:"tls_ca"`
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
}

// FileNames overrides the managed file names; empty fields keep the defaults.
type FileNames struct {
	// Trunk is the peer file (pbx) or the wizard file (oml).
	Trunk string `yaml:"trunk"`
	// Dialplan is the managed dialplan file.
	Dialplan string `yaml:"dialplan"`
	// TrunkParent includes Trunk (sip_custom.conf / oml_pjsip_wizard_custom.conf).
	TrunkParent string `yaml:"trunk_parent"`
	// DialplanParent includes Dialplan (extensions_custom.conf / oml_extensions_custom.conf).
	DialplanParent string `yaml:"dialplan_parent"`
}

// Deadlines bound the phases of an apply.
type Deadlines struct {
	// Command bounds one CLI command; default 10s.
	Command time.Duration `yaml:"command"`
	// Verify bounds the checks after a reload (trunk object, qualify, dialplan);
	// default 30s.
	Verify time.Duration `yaml:"verify"`
	// Probe bounds one probe call; default 8s (the probe dials with a 5 s timeout).
	Probe time.Duration `yaml:"probe"`
	// ProbeWait bounds the wait for the orchestrator's probe order after the
	// checks passed (desired states put by a rollout); default 2m. Without an
	// order by then the apply rolls back: the far side never reported.
	ProbeWait time.Duration `yaml:"probe_wait"`
}

// LoadConfig reads and validates an agent config file. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("load agent config: %w", err)
	}
	defer f.Close()
	var cfg Config
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("load agent config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("load agent config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate returns every problem of the config at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := events.ParseNodeID(c.Node); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	if err := c.OMniLeads.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("omnileads: %w", err))
	}
	if c.OMniLeads.Deployment != "" {
		if _, role, err := events.ParseNodeID(c.Node); err == nil && role != events.RoleOML {
			errs = append(errs, fmt.Errorf("omnileads: only an OMniLeads node (<site>.oml) has an OMniLeads deployment, not %s", c.Node))
		}
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		errs = append(errs, errors.New("command: the first element must name a program"))
	}
	for name, d := range map[string]time.Duration{
		"deadlines.command": c.Deadlines.Command, "deadlines.verify": c.Deadlines.Verify,
		"deadlines.probe": c.Deadlines.Probe, "deadlines.probe_wait": c.Deadlines.ProbeWait,
		"status_interval": c.StatusInterval, "poll_interval": c.PollInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero optional field set to its default.
func (c Config) WithDefaults() Config {
	if c.ConfigDir == "" {
		c.ConfigDir = "/etc/asterisk"
	}
	if len(c.Command) == 0 {
		c.Command = []string{"asterisk", "-rx"}
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/pbxfleet/" + c.Node
	}
	if c.Deadlines.Command == 0 {
		c.Deadlines.Command = 10 * time.Second
	}
	if c.Deadlines.Verify == 0 {
		c.Deadlines.Verify = 30 * time.Second
	}
	if c.Deadlines.Probe == 0 {
		c.Deadlines.Probe = 8 * time.Second
	}
	if c.Deadlines.ProbeWait == 0 {
		c.Deadlines.ProbeWait = 2 * time.Minute
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 15 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	return c
}
