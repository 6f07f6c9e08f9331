package realasterisk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// labEnv names the setting that points the tests at the real Asterisk: the
// directory holding lab.sh and the Asterisk 20.20.1 build it unpacks.
const labEnv = "PBXFLEET_ASTERISK_LAB"

// bins are built once by TestMain, only when the lab is there.
var bins proctest.Binaries

func TestMain(m *testing.M) {
	if os.Getenv(labEnv) == "" {
		os.Exit(m.Run()) // every test skips, saying why
	}
	dir, err := os.MkdirTemp("", "pbxfleet-realast-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "realasterisk: temp dir:", err)
		os.Exit(1)
	}
	code := 1
	if bins, err = proctest.Build(context.Background(), dir, false); err != nil {
		fmt.Fprintln(os.Stderr, "realasterisk:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// labScript returns lab.sh, or skips the test with the reason.
func labScript(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(labEnv)
	if dir == "" {
		t.Skipf("real Asterisk: %s is not set (the directory holding lab.sh and the Asterisk 20.20.1 build)", labEnv)
	}
	script := filepath.Join(dir, "lab.sh")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("real Asterisk: %s: %v", labEnv, err)
	}
	return script
}

// asteriskLab is one lab.sh directory: an Issabel-shaped instance ("pbx",
// chan_sip) and an OMniLeads-shaped one ("oml", res_pjsip), on loopback.
type asteriskLab struct {
	t       testing.TB
	script  string
	dir     string
	profile string
}

// startLab starts both instances on pbxIP and omlIP with OMniLeads profile
// (1.x or 2.x) and stops them (by the PIDs lab.sh recorded) when the test ends.
func startLab(t testing.TB, pbxIP, omlIP, profile string) *asteriskLab {
	t.Helper()
	l := &asteriskLab{t: t, script: labScript(t), dir: proctest.ShortDir(t), profile: profile}
	t.Cleanup(func() { _, _ = l.run("down", l.dir) })
	out, err := l.run("up", l.dir, pbxIP, omlIP)
	require.NoError(t, err, "lab.sh up: %s", out)
	return l
}

func (l *asteriskLab) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.script, args...)
	cmd.Env = append(os.Environ(), "OML_PROFILE="+l.profile)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rx runs one CLI command on instance ("pbx" or "oml").
func (l *asteriskLab) rx(instance, command string) string {
	l.t.Helper()
	out, err := l.run("rx", l.dir, instance, command)
	require.NoError(l.t, err, "%s: %s: %s", instance, command, out)
	return out
}

// cli is the argv prefix an agent config uses to run one CLI command.
func (l *asteriskLab) cli(instance string) []string {
	l.t.Helper()
	out, err := l.run("cli", l.dir, instance)
	require.NoError(l.t, err, out)
	return strings.Fields(out)
}

func (l *asteriskLab) etc(instance string) string { return filepath.Join(l.dir, instance, "etc") }

func (l *asteriskLab) logPath(instance string) string {
	return filepath.Join(l.dir, instance, "log", "full")
}

func (l *asteriskLab) stop(instance string) {
	l.t.Helper()
	out, err := l.run("stop", l.dir, instance)
	require.NoError(l.t, err, "lab.sh stop %s: %s", instance, out)
}

func (l *asteriskLab) start(instance string) {
	l.t.Helper()
	out, err := l.run("start", l.dir, instance)
	require.NoError(l.t, err, "lab.sh start %s: %s", instance, out)
}

// logMark is a position in an instance's log, to read what came after it.
type logMark struct {
	path   string
	offset int64
}

func (l *asteriskLab) mark(instance string) logMark {
	st, err := os.Stat(l.logPath(instance))
	if err != nil {
		return logMark{path: l.logPath(instance)}
	}
	return logMark{path: l.logPath(instance), offset: st.Size()}
}

// since returns the log lines written after m.
func (m logMark) since(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(m.path)
	require.NoError(t, err)
	if int64(len(b)) < m.offset {
		m.offset = 0 // the instance restarted with a new log
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b[m.offset:]))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// managedFileProblemRE matches a WARNING or ERROR line that a managed file
// (or the objects it defines) can cause: a config parser's complaint, chan_sip
// naming the trunk, or any line naming a pbxfleet file or section. Asterisk 20
// writes "[time] LEVEL[thread]([C-call])? file.c: message"; the file is matched
// before the colon.
var managedFileProblemRE = regexp.MustCompile(`\] (?:WARNING|ERROR)\[[0-9]+\](?:\[C-[0-9a-f]+\])? (?:` +
	`(?:config|pbx_config|res_pjsip_config_wizard|res_sorcery_config)\.c: ` +
	`|chan_sip\.c: .*(?:omnileads|issabel|pbxfleet)` +
	`|[^:]*: .*pbxfleet_)`)

// managedFileProblems returns the lines of lines that managedFileProblemRE
// matches.
func managedFileProblems(lines []string) []string {
	var bad []string
	for _, l := range lines {
		if managedFileProblemRE.MatchString(l) {
			bad = append(bad, l)
		}
	}
	return bad
}

// ---------------------------------------------------------------------------
// The control plane and the agents, as processes.

// fleetSite is what a test varies in the one-site fleet file.
type fleetSite struct {
	Scenario     string // lan, cloud or docker
	Profile      string // 1.x or 2.x
	PBXIP, OMLIP string
	Secret       string
	PBXTrunk     string // the chan_sip peer's name
	QualifyFreq  int    // seconds; 0: the default
}

// rig is a one-site fleet on a real Asterisk lab: pbxfleet serve, pbx-node
// and agents-node as processes, and a NATS connection for the test to look.
type rig struct {
	t        testing.TB
	lab      *asteriskLab
	site     fleetSite
	dir      string
	natsURL  string
	js       jetstream.JetStream
	pbxAgent *proctest.Proc
	omlAgent *proctest.Proc
	pbxConf  string
	omlConf  string
}

const siteID = "real-1"

// newRig starts the lab, serve and both agents for site.
func newRig(t testing.TB, site fleetSite, statusInterval time.Duration) *rig {
	t.Helper()
	if site.Profile == "" {
		site.Profile = "1.x"
	}
	r := &rig{t: t, site: site, dir: t.TempDir()}
	r.lab = startLab(t, site.PBXIP, site.OMLIP, site.Profile)
	port := proctest.FreePort(t)
	r.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	proctest.Start(t, "serve", bins.PBXFleet, "serve", "--data", filepath.Join(r.dir, "data"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--log-format", "text", "--repair-interval", "2s")
	_, r.js = proctest.DialNATS(t, "realasterisk test", r.natsURL)
	r.pbxConf = r.agentConfig("pbx", statusInterval)
	r.omlConf = r.agentConfig("oml", statusInterval)
	r.pbxAgent = proctest.Start(t, "pbx-node", bins.PBXNode, "--config", r.pbxConf, "--log-format", "text")
	r.omlAgent = proctest.Start(t, "agents-node", bins.AgentsNode, "--config", r.omlConf, "--log-format", "text")
	return r
}

// agentConfig writes the config of the site's role agent and returns its path.
func (r *rig) agentConfig(role string, statusInterval time.Duration) string {
	r.t.Helper()
	// The agent runs Asterisk's CLI through a wrapper that records each
	// command, so a test can tell what pbxfleet asked Asterisk to do.
	wrapper := filepath.Join(r.dir, role+"-cli.sh")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %q\nexec %s \"$@\"\n", r.commandLog(role), strings.Join(r.lab.cli(role), " "))
	require.NoError(r.t, os.WriteFile(wrapper, []byte(script), 0o700))
	argv, err := json.Marshal([]string{wrapper})
	require.NoError(r.t, err)
	cfg := fmt.Sprintf(`node: %s.%s
nats:
  url: %s
config_dir: %s
command: %s
state_dir: %s
status_interval: %s
`, siteID, role, r.natsURL, r.lab.etc(role), argv, filepath.Join(r.dir, "state-"+role), statusInterval)
	path := filepath.Join(r.dir, role+"-node.yaml")
	require.NoError(r.t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

// commandLog is where role's CLI wrapper records the commands it ran.
func (r *rig) commandLog(role string) string { return filepath.Join(r.dir, role+"-commands.log") }

// writeFleet writes the one-site fleet file for r.site and returns its path.
func (r *rig) writeFleet() string {
	r.t.Helper()
	s := r.site
	secretPath := filepath.Join(r.dir, "site.secret")
	require.NoError(r.t, os.WriteFile(secretPath, []byte(s.Secret+"\n"), 0o600))
	oml := fmt.Sprintf("{address: %s, profile: %q", s.OMLIP, s.Profile)
	if s.Scenario == "docker" {
		oml = fmt.Sprintf("{deployment: docker, container: oml-asterisk, profile: %q", s.Profile)
	}
	if s.QualifyFreq > 0 {
		oml += fmt.Sprintf(", qualify_frequency: %d", s.QualifyFreq)
	}
	oml += "}"
	pbx := fmt.Sprintf("{address: %s", s.PBXIP)
	if s.PBXTrunk != "" {
		pbx += ", trunk_name: " + s.PBXTrunk
	}
	pbx += "}"
	fleet := fmt.Sprintf(`version: 1
sites:
  - id: %s
    scenario: %s
    pbx: %s
    oml: %s
    secret: file:%s
    dids:
      - {number: "098098", extension: "5000"}
    agents:
      - {id: 1, sip_number: 1006, name: Adrian Belew}
      - {id: 2, sip_number: 1007, name: Mikael Ackerfeldt}
`, siteID, s.Scenario, pbx, oml, secretPath)
	path := filepath.Join(r.dir, "fleet.yaml")
	require.NoError(r.t, os.WriteFile(path, []byte(fleet), 0o600))
	return path
}

// rollout runs `pbxfleet rollout` on the current fleet file and returns the
// final record, the exit code and how long the command ran.
func (r *rig) rollout(extra ...string) (orchestrator.Rollout, int, time.Duration) {
	r.t.Helper()
	args := append([]string{"rollout", "start", r.writeFleet(), "--nats-url", r.natsURL, "--output", "json",
		"--no-progress", "--site-deadline", "90s"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bins.PBXFleet, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(r.t, err, "pbxfleet rollout: %s", stderr.String())
	}
	var rec orchestrator.Rollout
	require.NoError(r.t, json.Unmarshal(stdout.Bytes(), &rec), "rollout record (exit %d): %s\nstderr: %s", code, stdout.String(), stderr.String())
	r.t.Logf("rollout %s: %s (%s) exit %d in %s", rec.ID, rec.Phase, rec.Reason, code, took.Round(time.Millisecond))
	return rec, code, took
}

// status reads a node's status from KV pbxfleet_status.
func (r *rig) status(role string) (events.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, events.BucketStatus)
	if err != nil {
		return events.Status{}, err
	}
	e, err := kv.Get(ctx, siteID+"."+role)
	if err != nil {
		return events.Status{}, err
	}
	return events.DecodeStatus(e.Value(), nil, e.Key())
}

// siteOf returns the rollout's record of the site.
func siteOf(t testing.TB, rec orchestrator.Rollout) orchestrator.SiteState {
	t.Helper()
	for _, s := range rec.Sites {
		if s.Site == siteID {
			return s
		}
	}
	t.Fatalf("rollout %s has no site %s", rec.ID, siteID)
	return orchestrator.SiteState{}
}

// nodeResult returns role's result in a site record.
func nodeResult(t testing.TB, s orchestrator.SiteState, role string) *orchestrator.NodeResult {
	t.Helper()
	for _, n := range s.Nodes {
		if n.Role == role {
			require.NotNil(t, n.Result, "%s has no result in the record", role)
			return n.Result
		}
	}
	t.Fatalf("site %s has no node %s", s.Site, role)
	return nil
}

// results returns every result role's agent published, oldest first.
func (r *rig) results(role string) []events.Result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubject(siteID, role)},
	})
	require.NoError(r.t, err)
	var out []events.Result
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out // no more
		}
		res, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		require.NoError(r.t, err)
		out = append(out, res)
	}
}

// check returns the named check of res.
func check(t testing.TB, res events.Result, name string) events.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("result of %s revision %d has no check %s", res.Node, res.Revision, name)
	return events.Check{}
}
