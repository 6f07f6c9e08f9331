package fault

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labctl"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// startLabHost writes a fresh host's stock files into dir and starts a lab
// host on them; it is closed when the test ends.
func startLabHost(t *testing.T, role lab.Role, name, dir, addr string) *lab.Host {
	t.Helper()
	require.NoError(t, lab.WriteStockFiles(dir, role, addr, "1.x"))
	h, err := lab.NewHost(lab.Config{Role: role, Name: name, ConfigDir: dir, Address: addr, QualifyTimeout: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.Start(ctx))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// serveCLI serves a lab host's CLI on a Unix socket (as `pbxlab lab host
// --ctl` does) until the test ends.
func serveCLI(t *testing.T, sock string, h *lab.Host) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- labctl.Serve(ctx, sock, h, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	proctest.Eventually(t, 10*time.Second, "lab CLI on "+sock, func() (bool, string) {
		out, code, err := labctl.Run(ctx, sock, "core show version")
		return err == nil && code == 0, out
	})
}

// runAgent runs an in-process agent on its own NATS connection until the test ends.
func runAgent(t *testing.T, url string, cfg node.Config, side node.Side, cli node.CLI) *node.Agent {
	t.Helper()
	nc, _ := proctest.DialNATS(t, "fault test", url)
	a, err := node.New(cfg, side, cli, nc, node.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return a
}

// agentCreds are a node's files from `pbxfleet creds`: its nkey user seed
// (nats.nkey) and its curve seed (secret_key_file). Either may be empty.
type agentCreds struct {
	nkey      string
	secretKey string
}

// writeAgentConfig writes a pbx-node/agents-node config file and returns its
// path; with creds, the agent authenticates with its nkey and opens sealed
// secrets with its curve seed.
func writeAgentConfig(t *testing.T, path, nodeID, url, confDir, stateDir string, command []string, creds ...agentCreds) string {
	t.Helper()
	require.LessOrEqual(t, len(creds), 1, "one set of credentials per agent")
	quoted := make([]string, len(command))
	for i, c := range command {
		quoted[i] = strconv.Quote(c)
	}
	cfg := fmt.Sprintf(`node: %s
nats:
  url: %q
`, nodeID, url)
	if len(creds) == 1 && creds[0].nkey != "" {
		cfg += fmt.Sprintf("  nkey: %q\n", creds[0].nkey)
	}
	cfg += fmt.Sprintf(`config_dir: %q
command: [%s]
state_dir: %q
deadlines: {command: 10s, verify: 40s, probe: 6s}
poll_interval: 50ms
status_interval: 1s
`, confDir, strings.Join(quoted, ", "), stateDir)
	if len(creds) == 1 && creds[0].secretKey != "" {
		cfg += fmt.Sprintf("secret_key_file: %q\n", creds[0].secretKey)
	}
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

// killerScript is the agent's `asterisk -rx` for the crash: on `sip reload` it
// notes its parent's PID and SIGKILLs it (the agent, between writing its files
// and reloading Asterisk); any other command goes to the lab host like
// `asterisk -rx` would.
const killerScript = `#!/bin/sh
# pbxfleet fault test: asterisk -rx that kills the agent at its reload.
if [ "$1" = "sip reload" ]; then
	echo "$PPID" > '%s'
	kill -KILL "$PPID"
	exit 1
fi
exec '%s' lab rx --socket '%s' "$@"
`

// TestAgentKilledBetweenWriteAndReload: a real pbx-node process is SIGKILLed
// after it wrote the managed files and before Asterisk reloaded them; a
// restarted pbx-node puts the previous bytes back, applies the revision again
// and converges, and no temp or partial file is ever left.
func TestAgentKilledBetweenWriteAndReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	pbxAddr, omlAddr := labfleet.Addresses(addrAgentKill)
	site := labfleet.Site{ID: "crash-1", Scenario: asterisk.ScenarioLAN, PBXAddress: pbxAddr, OMLAddress: omlAddr, Profile: "1.x"}
	plan := fleetPlan(t, []labfleet.Site{site})
	pbxPlan, omlPlan := plan.Sites[0].Nodes[0], plan.Sites[0].Nodes[1]
	require.Equal(t, events.RolePBX, pbxPlan.Role)
	pbxID, omlID := pbxPlan.Desired.Node, omlPlan.Desired.Node
	rev := pbxPlan.Desired.Revision
	trunkName := pbxPlan.Desired.Trunk.PBXTrunkName

	root := t.TempDir()
	pbxConf, pbxState := filepath.Join(root, "pbx", "etc"), filepath.Join(root, "pbx", "state")
	sock := filepath.Join(proctest.ShortDir(t), "pbx.ctl")
	serveCLI(t, sock, startLabHost(t, lab.RolePBX, pbxID, pbxConf, pbxAddr))

	// The OMniLeads side, so that the trunk can converge: a lab host and an
	// in-process agent.
	omlConf := filepath.Join(root, "oml", "etc")
	omlHost := startLabHost(t, lab.RoleOML, omlID, omlConf, omlAddr)
	runAgent(t, srv.URL, node.Config{
		Node: omlID, ConfigDir: omlConf, StateDir: filepath.Join(root, "oml", "state"),
		Deadlines:    node.Deadlines{Verify: 45 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second,
	}, node.OMLSide(), omlHost)

	marker := filepath.Join(root, "killed.pid")
	script := filepath.Join(root, "asterisk-rx-killer.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(killerScript, marker, bins.PBXLab, sock)), 0o755))
	killerCfg := writeAgentConfig(t, filepath.Join(root, "pbx-node-killer.yaml"), pbxID, srv.URL, pbxConf, pbxState, []string{script})
	first := proctest.Start(t, "pbx-node-1", bins.PBXNode, "--config", killerCfg, "--log-format", "text")

	startOrchestratorService(t, srv.JS, srv.Conn)
	putDesiredOnOrder(ctx, t, srv.JS, pbxPlan.Desired)
	putDesiredOnOrder(ctx, t, srv.JS, omlPlan.Desired)
	t.Logf("injected: desired revision %d on %s and %s; pbx-node's command is a wrapper that SIGKILLs pbx-node (its parent) on `sip reload`", rev, pbxID, omlID)

	first.Wait(t, 30*time.Second)
	sig, ok := first.KilledBy()
	require.True(t, ok, "pbx-node ended without a signal: %v\n%s", first.Err(), proctest.Tail(first.Output(), 20))
	require.Equal(t, syscall.SIGKILL, sig)
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(first.PID()), strings.TrimSpace(string(b)), "the wrapper killed this pbx-node")
	t.Logf("checked: pbx-node (pid %d) ended by SIGKILL (%v) at its reload", first.PID(), sig)

	j := readJournal(t, pbxState)
	require.NotNil(t, j.InFlight, "journal: the apply is in flight")
	require.Equal(t, rev, j.InFlight.Revision)
	require.Equal(t, "written", j.InFlight.Phase)
	require.Zero(t, j.LastSeen, "the interrupted revision is not marked handled")
	require.Zero(t, j.Applied.Revision)
	require.Empty(t, tempFiles(t, pbxConf, pbxState), "no temp file left by the crash")
	for _, f := range pbxPlan.Rendered.Files {
		got, err := os.ReadFile(filepath.Join(pbxConf, f.Name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(f.Content, got), "%s holds the whole revision %d as rendered, not part of it", f.Name, rev)
	}
	for _, inc := range pbxPlan.Rendered.Includes {
		got, err := os.ReadFile(filepath.Join(pbxConf, inc.Parent))
		require.NoError(t, err)
		require.Contains(t, string(got), inc.Line+"\n")
	}
	peers, _, err := labctl.Run(ctx, sock, "sip show peers")
	require.NoError(t, err)
	require.NotContains(t, peers, trunkName, "Asterisk (lab) never reloaded the new files")
	require.Empty(t, resultsFor(allResults(ctx, t, srv.JS), pbxID, rev), "the killed apply published no result")
	t.Logf("checked: journal in flight (revision %d, phase %s), no temp file, %d managed files whole (byte-equal to the render), lab not reloaded, no result yet",
		j.InFlight.Revision, j.InFlight.Phase, len(pbxPlan.Rendered.Files))

	normalCfg := writeAgentConfig(t, filepath.Join(root, "pbx-node.yaml"), pbxID, srv.URL, pbxConf, pbxState,
		[]string{bins.PBXLab, "lab", "rx", "--socket", sock})
	second := proctest.Start(t, "pbx-node-2", bins.PBXNode, "--config", normalCfg, "--log-format", "text")
	t.Logf("injected: restarted pbx-node (pid %d) on the same state dir with the plain `pbxlab lab rx` prefix", second.PID())

	var pbxRes, omlRes []storedResult
	proctest.Eventually(t, 60*time.Second, "both nodes report revision "+strconv.FormatUint(rev, 10), func() (bool, string) {
		all := allResults(ctx, t, srv.JS)
		pbxRes, omlRes = resultsFor(all, pbxID, rev), resultsFor(all, omlID, rev)
		return len(pbxRes) > 0 && len(omlRes) > 0, fmt.Sprintf("%d pbx, %d oml results", len(pbxRes), len(omlRes))
	})
	require.Len(t, pbxRes, 1, "one result for revision %d from %s", rev, pbxID)
	require.Equal(t, events.OutcomeConverged, pbxRes[0].res.Outcome, pbxRes[0].res.Reason)
	require.Len(t, omlRes, 1)
	require.Equal(t, events.OutcomeConverged, omlRes[0].res.Outcome, omlRes[0].res.Reason)
	require.Contains(t, second.Output(), "an apply was interrupted; restoring the previous files", "the restarted agent recovered first")

	j = readJournal(t, pbxState)
	require.Nil(t, j.InFlight)
	require.Equal(t, rev, j.Applied.Revision)
	require.Equal(t, rev, j.LastSeen)
	require.Empty(t, tempFiles(t, pbxConf, pbxState))
	for _, f := range pbxPlan.Rendered.Files {
		got, err := os.ReadFile(filepath.Join(pbxConf, f.Name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(f.Content, got), "%s is whole after the restart", f.Name)
	}
	peers, _, err = labctl.Run(ctx, sock, "sip show peers")
	require.NoError(t, err)
	require.Contains(t, peers, trunkName)
	proctest.Eventually(t, 20*time.Second, pbxID+" status shows revision "+strconv.FormatUint(rev, 10), func() (bool, string) {
		st, err := status(ctx, srv.JS, pbxID)
		if err != nil {
			return false, err.Error()
		}
		return st.AppliedRevision == rev && st.Healthy && !st.Drift, fmt.Sprintf("%+v", st)
	})
	t.Logf("checked: after the restart %s recovered, then converged revision %d (1 result, probe %s), %s converged too; journal applied=%d, files whole, no temp file, status healthy",
		pbxID, rev, pbxRes[0].res.Probe.Verdict, omlID, j.Applied.Revision)
}
