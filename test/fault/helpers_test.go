package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// Each test takes its own range of lab addresses (labfleet.Addresses), far
// from the ranges the other packages' tests use, so packages run in parallel
// never bind the same loopback address and port.
const (
	addrAgentKill   = 3000
	addrServeKill   = 3010
	addrDriverKill  = 3020
	addrCluster     = 3030
	addrLeafHub     = 3040
	addrLeafSite    = 3045
	addrHostile     = 3050
	addrAuthCLI     = 3060
	addrLostStore   = 3070
	addrStop        = 3080
	sitesPerRollout = 6
)

// ---------------------------------------------------------------------------
// NATS

// putDesired encodes d and puts it on its node's key, returning the KV revision.
func putDesired(ctx context.Context, t *testing.T, js jetstream.JetStream, d events.Desired) uint64 {
	t.Helper()
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	seq, err := kv.Put(ctx, d.Node, data)
	require.NoError(t, err)
	return seq
}

// putDesiredOnOrder puts d as a rollout would (its probe waits for an order) and
// needs a running orchestrator service (startOrchestratorService): both nodes of
// a site applying at once would otherwise each probe before the other applied.
func putDesiredOnOrder(ctx context.Context, t *testing.T, js jetstream.JetStream, d events.Desired) uint64 {
	t.Helper()
	d.Probe = events.ProbeOnOrder
	return putDesired(ctx, t, js, d)
}

// startOrchestratorService runs the orchestrator service in process until the
// test ends: its keeper orders the probes of desired states put by hand.
func startOrchestratorService(t *testing.T, js jetstream.JetStream, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = orchestrator.New(js, nc, orchestrator.WithLogger(slog.New(slog.DiscardHandler))).Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// storedResult is one message of PBXFLEET_RESULTS.
type storedResult struct {
	seq uint64
	res events.Result
}

// allResults returns every result stored in PBXFLEET_RESULTS, in order.
func allResults(ctx context.Context, t *testing.T, js jetstream.JetStream) []storedResult {
	t.Helper()
	s, err := js.Stream(ctx, events.StreamResults)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []storedResult
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		r, err := events.DecodeResult(msg.Data, msg.Header, msg.Subject)
		require.NoError(t, err, "result at seq %d", seq)
		out = append(out, storedResult{seq: seq, res: r})
	}
	return out
}

// resultsFor returns the stored results of node for revision rev.
func resultsFor(all []storedResult, node string, rev uint64) []storedResult {
	var out []storedResult
	for _, r := range all {
		if r.res.Node == node && r.res.Revision == rev && r.res.Outcome.Final() {
			out = append(out, r)
		}
	}
	return out
}

// desiredHistory returns the decoded history of a node's desired key (puts only).
func desiredHistory(ctx context.Context, t *testing.T, js jetstream.JetStream, nodeID string) []events.Desired {
	t.Helper()
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	hist, err := kv.History(ctx, nodeID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil // never put
	}
	require.NoError(t, err)
	var out []events.Desired
	for _, e := range hist {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		d, err := events.DecodeDesired(e.Value(), nil, nodeID)
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

// status reads a node's status entry.
func status(ctx context.Context, js jetstream.JetStream, nodeID string) (events.Status, error) {
	kv, err := js.KeyValue(ctx, events.BucketStatus)
	if err != nil {
		return events.Status{}, err
	}
	e, err := kv.Get(ctx, nodeID)
	if err != nil {
		return events.Status{}, err
	}
	return events.DecodeStatus(e.Value(), nil, nodeID)
}

// ---------------------------------------------------------------------------
// Fleets, plans and rollouts

// fleetPlan plans sites with fresh secrets, like `pbxfleet plan` would.
func fleetPlan(t *testing.T, sites []labfleet.Site) *planner.Plan {
	t.Helper()
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), t.TempDir(), planner.Options{})
	require.NoError(t, err)
	p, err := planner.BuildPlan(spec, nil)
	require.NoError(t, err)
	return p
}

// startLabFleet runs lab hosts and real agents for sites, connected to url.
func startLabFleet(t *testing.T, sites []labfleet.Site, url string) *labfleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := labfleet.Start(ctx, sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: url,
		Deadlines:    node.Deadlines{Verify: 20 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second, QualifyTimeout: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f
}

// waveStrategy is the strategy of the rollout tests: a canary site, then waves
// of two sites, every result within 60 s, nothing tolerated.
func waveStrategy() orchestrator.Strategy {
	return orchestrator.Strategy{
		Canary: 1, WaveSize: 2, SiteDeadline: 60 * time.Second,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit,
	}
}

// startRollout asks the orchestrator service for a rollout, retrying while no
// orchestrator answers yet.
func startRollout(ctx context.Context, t *testing.T, nc *nats.Conn, op orchestrator.Plan, st orchestrator.Strategy) string {
	t.Helper()
	body, err := json.Marshal(orchestrator.StartRequest{Plan: op, Strategy: st})
	require.NoError(t, err)
	for {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		msg, err := nc.RequestWithContext(rctx, events.RolloutSubject(events.RolloutStart), body)
		cancel()
		if err == nil {
			require.Empty(t, msg.Header.Get("Nats-Service-Error"), "start rollout")
			var sr orchestrator.StartResponse
			require.NoError(t, json.Unmarshal(msg.Data, &sr))
			return sr.ID
		}
		if ctx.Err() != nil {
			t.Fatalf("start rollout: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readRollout reads a rollout record (header and sites) from KV, as any reader
// does: through an engine, which needs no service of its own to read.
func readRollout(ctx context.Context, js jetstream.JetStream, id string) (orchestrator.Rollout, error) {
	return orchestrator.New(js, nil, orchestrator.WithLogger(slog.New(slog.DiscardHandler))).Get(ctx, id)
}

// midWave reports whether a rollout is past its canary with a site of the
// current wave in flight.
func midWave(r orchestrator.Rollout) bool {
	if r.Phase != orchestrator.PhaseRunning || r.Wave < 2 {
		return false
	}
	for _, s := range r.Sites {
		if s.Wave == r.Wave && s.Outcome == orchestrator.SiteInFlight {
			return true
		}
	}
	return false
}

// awaitRecord watches a rollout's record until cond holds and returns it.
func awaitRecord(ctx context.Context, t *testing.T, js jetstream.JetStream, id, what string, cond func(orchestrator.Rollout) bool) orchestrator.Rollout {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := orchestrator.New(js, nil, orchestrator.WithLogger(slog.New(slog.DiscardHandler))).Watch(wctx, id)
	require.NoError(t, err)
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("rollout %s: %s not seen: %v", id, what, ctx.Err())
		case r, ok := <-updates:
			require.True(t, ok, "watch of rollout %s ended", id)
			if cond(r) {
				return r
			}
			if r.Phase.Terminal() {
				t.Fatalf("rollout %s ended (%s) before %s was seen", id, r, what)
			}
		}
	}
}

// awaitTerminal polls the record (surviving server restarts) until the rollout
// ends, and returns it.
func awaitTerminal(t *testing.T, js jetstream.JetStream, id string, d time.Duration) orchestrator.Rollout {
	t.Helper()
	var r orchestrator.Rollout
	proctest.Eventually(t, d, "rollout "+id+" ends", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := readRollout(ctx, js, id)
		if err != nil {
			return false, err.Error()
		}
		r = got
		return r.Phase.Terminal(), r.String()
	})
	return r
}

// describeWave says where a rollout stands, for the log.
func describeWave(r orchestrator.Rollout) string {
	var inFlight, done []string
	for _, s := range r.Sites {
		switch s.Outcome {
		case orchestrator.SiteInFlight:
			inFlight = append(inFlight, s.Site)
		case orchestrator.SiteConverged:
			done = append(done, s.Site)
		}
	}
	return fmt.Sprintf("wave %d/%d, in flight %v, converged %v", r.Wave, r.Waves, inFlight, done)
}

// checkOncePerNode checks, for every node of a finished rollout, that its
// desired key got exactly one put of the rollout's revision and that
// PBXFLEET_RESULTS holds exactly one result for that revision, converged: the
// node applied it once (an agent publishes a result per apply attempt), and no
// result was lost. It returns the number of nodes checked.
func checkOncePerNode(ctx context.Context, t *testing.T, js jetstream.JetStream, r orchestrator.Rollout) int {
	t.Helper()
	all := allResults(ctx, t, js)
	n := 0
	for _, s := range r.Sites {
		for _, ns := range s.Nodes {
			id := events.NodeID(s.Site, ns.Role)
			puts := 0
			for _, d := range desiredHistory(ctx, t, js, id) {
				if d.Rollout == r.ID && d.Revision == ns.Revision {
					puts++
				}
			}
			require.Equal(t, 1, puts, "%s: puts of revision %d by rollout %s", id, ns.Revision, r.ID)
			got := resultsFor(all, id, ns.Revision)
			require.Len(t, got, 1, "%s: results for revision %d", id, ns.Revision)
			require.Equal(t, events.OutcomeConverged, got[0].res.Outcome, "%s: %s", id, got[0].res.Reason)
			require.NotNil(t, ns.Result, "%s: the record has no result", id)
			require.Equal(t, got[0].seq, ns.Result.Seq, "%s: the record folded the stored result", id)
			n++
		}
	}
	total, awaiting := 0, 0
	for _, sr := range all {
		switch {
		case sr.res.Rollout != r.ID:
		case sr.res.Outcome.Final():
			total++
		default:
			awaiting++
		}
	}
	require.Equal(t, n, total, "every final result of rollout %s is one of its nodes' results", r.ID)
	require.GreaterOrEqual(t, awaiting, n, "each node reported awaiting_probe before its final result")
	return n
}

// ---------------------------------------------------------------------------
// Files

// tempFiles lists files under dirs that look like writeAtomic's temp files
// (".<name>.pbxfleet-*"): a crash must never leave one that a reader could take
// for config.
func tempFiles(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.Contains(d.Name(), ".pbxfleet-") {
				out = append(out, path)
			}
			return nil
		})
		require.NoError(t, err)
	}
	return out
}

// snapshot returns every regular file's bytes under dir, by relative path.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = b
		return nil
	})
	require.NoError(t, err)
	return out
}

// sameFiles reports the differences between two snapshots ("" when equal).
func sameFiles(a, b map[string][]byte) string {
	var diffs []string
	for name, ab := range a {
		bb, ok := b[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" removed")
		case !bytes.Equal(ab, bb):
			diffs = append(diffs, name+" changed")
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			diffs = append(diffs, name+" added")
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, ", ")
}

// readJournal reads an agent's journal.
func readJournal(t *testing.T, stateDir string) node.Journal {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "journal.json"))
	require.NoError(t, err)
	var j node.Journal
	require.NoError(t, json.Unmarshal(b, &j))
	return j
}

// drive runs eng.Run for rollout id in the background and returns a function
// that waits (bounded by ctx) for it to end and returns the final record. Like
// `pbxfleet serve`, the driver runs on a context without a deadline, so each
// NATS call gets jetstream's default timeout: a request lost with a server is
// retried, not waited for until the test's deadline.
func drive(ctx context.Context, t *testing.T, eng *orchestrator.Engine, id string) func() orchestrator.Rollout {
	t.Helper()
	type ran struct {
		r   orchestrator.Rollout
		err error
	}
	done := make(chan ran, 1)
	runCtx, stop := context.WithCancel(context.Background())
	go func() {
		r, err := eng.Run(runCtx, id)
		done <- ran{r, err}
	}()
	var once sync.Once
	var res ran
	wait := func() { res = <-done }
	t.Cleanup(func() {
		stop()
		once.Do(wait)
	})
	return func() orchestrator.Rollout {
		t.Helper()
		select {
		case res = <-done:
			once.Do(func() {})
		case <-ctx.Done():
			t.Fatalf("rollout %s still running: %v", id, ctx.Err())
		}
		require.NoError(t, res.err)
		return res.r
	}
}
