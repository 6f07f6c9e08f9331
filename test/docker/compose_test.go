package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

const (
	// project is the compose project of the test; every container, network and
	// volume it creates carries this prefix.
	project = "pbxfleet-test"
	// imageTag tags the images built for the test; they are removed at the end.
	imageTag = "compose-test"
	// omlContainer is the fixed container name of site docker-1's OMniLeads lab.
	omlContainer = "oml-asterisk-prodenv"
	// hubNetwork is the compose network between the hub and the leaf servers.
	hubNetwork = project + "_hub"
	// lan1LeafHubIP is lan-1's leaf address on the hub network (docker-compose.yml).
	lan1LeafHubIP = "10.77.0.21"
)

// sites of deploy/fleet.compose.yaml.
var sites = []string{"lan-1", "docker-1"}

// nodes returns the node ids of the given sites.
func nodes(siteIDs ...string) []string {
	var out []string
	for _, s := range siteIDs {
		out = append(out, events.NodeID(s, events.RolePBX), events.NodeID(s, events.RoleOML))
	}
	return out
}

// fleet is the running compose fleet.
type fleet struct {
	root string
	env  []string
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	// pbxfleet is the host's pbxfleet binary.
	pbxfleet string
}

// requireEngine skips the test when no Docker engine or docker-compose is there.
func requireEngine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Docker engine and docker-compose: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine reachable (`docker info`: %v): %s", err, firstLine(string(out)))
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--quiet", "--filter", "name=^/"+omlContainer+"$").Output()
	if err == nil && len(strings.TrimSpace(string(out))) > 0 {
		t.Skipf("a container named %s exists already (another compose fleet is up?): the test needs that name", omlContainer)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// run runs a command in the repository root with the fleet's environment and
// returns its combined output.
func (f *fleet) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = f.root
	cmd.Env = f.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(string(out), 15))
	}
	return string(out), nil
}

func (f *fleet) must(ctx context.Context, t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := f.run(ctx, name, args...)
	require.NoError(t, err)
	return strings.TrimSpace(out)
}

func (f *fleet) compose(ctx context.Context, args ...string) (string, error) {
	return f.run(ctx, "docker-compose", append([]string{"--project-name", project, "--file", "docker-compose.yml"}, args...)...)
}

// container returns the id of a compose service's container.
func (f *fleet) container(ctx context.Context, t *testing.T, service string) string {
	t.Helper()
	out, err := f.compose(ctx, "ps", "--quiet", service)
	require.NoError(t, err)
	id := strings.TrimSpace(out)
	require.NotEmpty(t, id, "no container for service %s", service)
	return id
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// up builds the images, starts the compose fleet and connects to the hub; it
// registers the teardown (logs on failure, compose down -v, the test images).
func up(ctx context.Context, t *testing.T) *fleet {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	natsPort, httpPort := freePort(t), freePort(t)
	f := &fleet{
		root: root,
		env: append(os.Environ(), "TAG="+imageTag, "PBXFLEET_TAG="+imageTag,
			"PBXFLEET_HUB_NATS_PORT="+strconv.Itoa(natsPort), "PBXFLEET_HUB_HTTP_PORT="+strconv.Itoa(httpPort)),
		url: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
	}

	start := time.Now()
	f.must(ctx, t, "scripts/images.sh")
	t.Logf("built the images (tag %s) in %s", imageTag, time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			if out, err := f.compose(cctx, "logs", "--no-color", "--tail", "25"); err == nil {
				t.Logf("compose logs (last lines per service):\n%s", out)
			}
		}
		if f.nc != nil {
			f.nc.Close()
		}
		if out, err := f.compose(cctx, "down", "--volumes", "--remove-orphans", "--timeout", "2"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
		for _, image := range []string{"pbxfleet", "pbxlab", "pbx-node", "agents-node", "nats-server"} {
			_, _ = f.run(cctx, "docker", "rmi", "--force", "pbxfleet/"+image+":"+imageTag)
		}
	})

	bin := filepath.Join(t.TempDir(), "pbxfleet")
	f.must(ctx, t, "go", "build", "-o", bin, "./cmd/pbxfleet")
	f.pbxfleet = bin

	start = time.Now()
	f.must(ctx, t, "docker-compose", "--project-name", project, "--file", "docker-compose.yml", "up", "--detach")
	t.Logf("compose fleet up in %s; hub NATS on %s", time.Since(start).Round(time.Second), f.url)

	f.nc, err = nats.Connect(f.url, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Name("pbxfleet compose test"))
	require.NoError(t, err)
	f.js, err = jetstream.New(f.nc)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, bus.WaitForJetStream(wctx, f.js))
	return f
}

// waitAgents waits until every node has put a status entry (agents up, their
// leaf connected to the hub).
func (f *fleet) waitAgents(ctx context.Context, t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	want := nodes(sites...)
	var missing []string
	for time.Since(start) < timeout {
		missing = missing[:0]
		kv, err := f.js.KeyValue(ctx, events.BucketStatus)
		for _, n := range want {
			if err != nil {
				missing = append(missing, n)
				continue
			}
			if _, gerr := kv.Get(ctx, n); gerr != nil {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			t.Logf("all %d agents reported status after %s", len(want), time.Since(start).Round(100*time.Millisecond))
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
	t.Fatalf("agents without status after %s: %v", timeout, missing)
}

// fleetFile writes the compose fleet file for a round: round 0 is
// deploy/fleet.compose.yaml as is; round r adds DID 7777<r> on extension 6<r>00
// to every site, so each round changes every node's desired state.
func (f *fleet) fleetFile(t *testing.T, round int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.root, "deploy", "fleet.compose.yaml"))
	require.NoError(t, err)
	s := strings.ReplaceAll(string(data), "file:secrets/", "file:"+filepath.Join(f.root, "deploy", "secrets")+"/")
	if round > 0 {
		did := `      - {number: "098098", extension: "5000"}`
		require.Contains(t, s, did)
		s = strings.ReplaceAll(s, did, did+fmt.Sprintf("\n      - {number: \"7777%d\", extension: \"6%d00\"}", round, round))
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("fleet.round%d.yaml", round))
	require.NoError(t, os.WriteFile(path, []byte(s), 0o644))
	return path
}

// desiredRevision returns the revision on the node's desired key.
func (f *fleet) desiredRevision(ctx context.Context, t *testing.T, node string) uint64 {
	t.Helper()
	kv, err := f.js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	e, err := kv.Get(ctx, node)
	require.NoError(t, err)
	d, err := events.DecodeDesired(e.Value(), nil, node)
	require.NoError(t, err)
	return d.Revision
}

// lastResult returns the node's latest result, if any.
func (f *fleet) lastResult(ctx context.Context, node string) (events.Result, bool) {
	site, role, err := events.ParseNodeID(node)
	if err != nil {
		return events.Result{}, false
	}
	stream, err := f.js.Stream(ctx, events.StreamResults)
	if err != nil {
		return events.Result{}, false
	}
	subject := events.ResultSubject(site, role)
	msg, err := stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return events.Result{}, false
	}
	r, err := events.DecodeResult(msg.Data, msg.Header, subject)
	if err != nil {
		return events.Result{}, false
	}
	return r, true
}

// describe is one line about a node's latest result.
func describe(r events.Result, ok bool) string {
	if !ok {
		return "no result"
	}
	s := fmt.Sprintf("rev %d %s", r.Revision, r.Outcome)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// waitConverged waits until each node's latest result is converged at its
// revision in revs (or later) and logs how long it took.
func (f *fleet) waitConverged(ctx context.Context, t *testing.T, revs map[string]uint64, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	pending := map[string]string{}
	for time.Since(start) < timeout {
		for n := range pending {
			delete(pending, n)
		}
		for n, rev := range revs {
			r, ok := f.lastResult(ctx, n)
			if !ok || r.Revision < rev || r.Outcome != events.OutcomeConverged {
				pending[n] = describe(r, ok)
			}
		}
		if len(pending) == 0 {
			t.Logf("observed: %s converged after %s", strings.Join(sortedKeys(revs), ", "), time.Since(start).Round(100*time.Millisecond))
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
	t.Fatalf("not converged after %s: %v", timeout, pending)
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func only(revs map[string]uint64, ids ...string) map[string]uint64 {
	out := map[string]uint64{}
	for _, n := range ids {
		out[n] = revs[n]
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rollout runs `pbxfleet rollout` on the round's fleet file with --output
// json and returns the final record (or, with --detach, the started id in
// record.ID), the exit status and what it printed on stderr.
func (f *fleet) rollout(ctx context.Context, t *testing.T, round int, args ...string) (orchestrator.Rollout, int, string) {
	t.Helper()
	args = append([]string{"rollout", "start", f.fleetFile(t, round), "--nats-url", f.url, "--output", "json", "--no-progress"}, args...)
	return f.pbxfleetJSON(ctx, t, args...)
}

// pbxfleetJSON runs the host's pbxfleet and decodes its JSON output.
func (f *fleet) pbxfleetJSON(ctx context.Context, t *testing.T, args ...string) (orchestrator.Rollout, int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, f.pbxfleet, args...)
	cmd.Dir = f.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	// The JSON document comes last: progress lines may precede it on stdout.
	out := stdout.Bytes()
	if i := bytes.LastIndex(out, []byte("\n{")); i >= 0 {
		out = out[i+1:]
	}
	var r orchestrator.Rollout
	if i := bytes.IndexByte(out, '{'); i >= 0 {
		require.NoError(t, json.Unmarshal(out[i:], &r), "pbxfleet %s: %s %s", args[0], stdout.String(), stderr.String())
	}
	return r, code, strings.TrimSpace(stderr.String())
}

// watch follows a rollout until it ends, retrying while NATS is unreachable.
func (f *fleet) watch(ctx context.Context, t *testing.T, id string, timeout time.Duration) orchestrator.Rollout {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		r, code, stderr := f.pbxfleetJSON(wctx, t, "watch", id, "--nats-url", f.url, "--output", "json")
		cancel()
		if r.ID != "" && r.Phase.Terminal() {
			t.Logf("observed: rollout %s %s (exit %d): %d converged, %d failed, %d unreachable",
				r.ID, r.Phase, code, r.Counters.Converged, r.Counters.Failed, r.Counters.Unreachable)
			return r
		}
		require.True(t, time.Now().Before(deadline), "rollout %s not finished after %s: exit %d: %s", id, timeout, code, stderr)
		t.Logf("watch %s: exit %d (%s); again", id, code, firstLine(stderr))
		sleep(ctx, time.Second)
	}
}

// site returns a site's state in the rollout record.
func site(t *testing.T, r orchestrator.Rollout, id string) orchestrator.SiteState {
	t.Helper()
	s, ok := r.Site(id)
	require.True(t, ok, "site %s in rollout %s", id, r.ID)
	return s
}

// revisions returns the revision the rollout puts on each node.
func revisions(r orchestrator.Rollout) map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range r.Sites {
		for _, n := range s.Nodes {
			out[events.NodeID(s.Site, n.Role)] = n.Revision
		}
	}
	return out
}

func TestComposeFleet(t *testing.T) {
	requireEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	f := up(ctx, t)
	f.waitAgents(ctx, t, 90*time.Second)

	ok := t.Run("rollout converges every site", func(t *testing.T) {
		r, code, stderr := f.rollout(ctx, t, 0)
		require.Equal(t, 0, code, "pbxfleet rollout: %s", stderr)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase)
		for _, id := range sites {
			require.Equal(t, orchestrator.SiteConverged, site(t, r, id).Outcome, id)
		}
		f.waitConverged(ctx, t, revisions(r), 30*time.Second)
		for _, n := range nodes(sites...) {
			res, _ := f.lastResult(ctx, n)
			require.NotNil(t, res.Probe, n)
			require.Equal(t, 1, res.Probe.HangupCause, "%s: the probe call ends unallocated (cause 1): the trunk authenticates", n)
		}
		// The seed's own check, through the engine, against the OMniLeads lab container.
		out := f.must(ctx, t, "docker", "exec", omlContainer, "asterisk", "-rx", "pjsip show endpoints")
		require.Contains(t, out, "Endpoint:  issabel")
		t.Logf("docker exec %s asterisk -rx 'pjsip show endpoints':\n%s", omlContainer, lastLines(out, 12))
	})
	if !ok {
		t.FailNow()
	}

	t.Run("leaf cut off during its wave is unreachable and catches up", func(t *testing.T) {
		leaf := f.container(ctx, t, "lan-1-nats")
		f.must(ctx, t, "docker", "network", "disconnect", hubNetwork, leaf)
		t.Logf("injected: lan-1's leaf NATS disconnected from network %s", hubNetwork)
		reconnected := false
		defer func() {
			if !reconnected {
				_, _ = f.run(context.Background(), "docker", "network", "connect", "--ip", lan1LeafHubIP, hubNetwork, leaf)
			}
		}()
		r, code, stderr := f.rollout(ctx, t, 1, "--canary-site", "docker-1", "--site-deadline", "20s", "--max-unreachable", "1")
		t.Logf("observed: rollout %s %s (exit %d; %s): docker-1 %s, lan-1 %s (%s)", r.ID, r.Phase, code, firstLine(stderr),
			site(t, r, "docker-1").Outcome, site(t, r, "lan-1").Outcome, site(t, r, "lan-1").Message)
		require.Equal(t, orchestrator.SiteConverged, site(t, r, "docker-1").Outcome)
		require.Equal(t, orchestrator.SiteUnreachable, site(t, r, "lan-1").Outcome)
		f.must(ctx, t, "docker", "network", "connect", "--ip", lan1LeafHubIP, hubNetwork, leaf)
		reconnected = true
		t.Logf("injected: lan-1's leaf NATS reconnected to %s", hubNetwork)
		f.waitConverged(ctx, t, only(revisions(r), nodes("lan-1")...), 2*time.Minute)
	})

	t.Run("hub NATS restarted mid-rollout", func(t *testing.T) {
		hub := f.container(ctx, t, "hub-nats")
		started, code, stderr := f.rollout(ctx, t, 2, "--detach")
		require.Equal(t, 0, code, stderr)
		f.must(ctx, t, "docker", "restart", "--time", "1", hub)
		t.Logf("injected: hub NATS restarted right after rollout %s started", started.ID)
		r := f.watch(ctx, t, started.ID, 3*time.Minute)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, r.Message)
		f.waitConverged(ctx, t, revisions(r), 30*time.Second)
	})

	t.Run("agent killed mid-apply converges on restart", func(t *testing.T) {
		agent := f.container(ctx, t, "lan-1-pbx-node")
		lab := f.container(ctx, t, "lan-1-pbx-lab")
		started, code, stderr := f.rollout(ctx, t, 3, "--detach")
		require.Equal(t, 0, code, stderr)
		// Kill the agent once its new dialplan is loaded (written and reloaded),
		// which is before it has verified the trunk and published its result.
		loaded := false
		for deadline := time.Now().Add(30 * time.Second); !loaded && time.Now().Before(deadline); {
			out, _ := f.run(ctx, "docker", "exec", lab, "asterisk", "-rx", "dialplan show from-internal-custom")
			loaded = strings.Contains(out, "'6300'")
			if !loaded {
				sleep(ctx, 50*time.Millisecond)
			}
		}
		f.must(ctx, t, "docker", "kill", agent)
		res, ok := f.lastResult(ctx, "lan-1.pbx")
		t.Logf("injected: lan-1.pbx agent killed (SIGKILL), new dialplan loaded: %v; desired rev %d, latest result then: %s",
			loaded, f.desiredRevision(ctx, t, "lan-1.pbx"), describe(res, ok))
		f.must(ctx, t, "docker", "start", agent)
		t.Log("injected: lan-1.pbx agent started again")
		r := f.watch(ctx, t, started.ID, 3*time.Minute)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, r.Message)
		f.waitConverged(ctx, t, revisions(r), 30*time.Second)
	})
}
