package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// behaviour is how a simulated node answers one revision.
type behaviour int

const (
	converge behaviour = iota
	fail
	rollBack
	reject
	silent // handles the revision and never reports
	hold   // reports converged only when the test calls release
	// The probe protocol (desired states with events.ProbeOnOrder): report
	// awaiting_probe, then take the orchestrator's order on the node's probe
	// endpoint and report converged, or rolled_back on a cancel.
	awaitOrder
	// awaitOrder whose probe call fails (rolled_back with cause 21).
	awaitProbeFails
	// awaitOrder whose awaiting_probe report waits for releaseAwaiting.
	awaitHeld
)

// order is a probe order a simulated node received, and when.
type order struct {
	node string
	o    events.ProbeOrder
	at   time.Time
}

// fleet simulates the node agents of many sites with one watcher on the whole
// pbxfleet_desired bucket: like internal/node, each node handles a revision only
// if it is newer than the last it handled and publishes one events.Result for
// it (Nats-Msg-Id = event id). A site that is down ignores everything until up
// is called, then gets whatever its keys hold then.
type fleet struct {
	t  testing.TB
	js jetstream.JetStream
	kv jetstream.KeyValue

	mu      sync.Mutex
	behave  func(node string, rev uint64) behaviour
	down    map[string]bool
	last    map[string]uint64
	handled map[string][]uint64 // revisions each node handled
	seen    map[string][]uint64 // revisions each node's key showed the watcher
	held    []events.Result
	changed chan struct{}
	// The probe protocol: what each node awaits an order for, the held
	// awaiting_probe reports, and every order received.
	awaiting     map[string]awaitingOrder
	heldAwaiting []events.Result
	orders       []order
	// staleReject makes a node answer a revision at or below the last it
	// handled with a rejected result naming that one, as node agents do.
	staleReject bool
}

type awaitingOrder struct {
	d events.Desired
	b behaviour
}

func startFleet(t testing.TB, srv *natstest.Server, behave func(node string, rev uint64) behaviour, down ...string) *fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	f := &fleet{
		t: t, js: srv.JS, kv: kv, behave: behave,
		down: map[string]bool{}, last: map[string]uint64{}, handled: map[string][]uint64{}, seen: map[string][]uint64{},
		changed: make(chan struct{}), awaiting: map[string]awaitingOrder{},
	}
	sub, err := srv.Conn.Subscribe(events.NodeSubjectPrefix+".*.*."+events.EndpointProbe, func(m *nats.Msg) { f.order(ctx, m) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for _, s := range down {
		f.down[s] = true
	}
	w, err := kv.WatchAll(ctx)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			f.handle(ctx, e)
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = w.Stop()
		<-done
	})
	return f
}

func (f *fleet) setBehaviour(b func(node string, rev uint64) behaviour) {
	f.mu.Lock()
	f.behave = b
	f.mu.Unlock()
}

func (f *fleet) handle(ctx context.Context, e jetstream.KeyValueEntry) {
	d, err := events.DecodeDesired(e.Value(), nil, e.Key())
	if err != nil {
		f.mu.Lock()
		tolerate := f.staleReject // the tests of hostile keys put garbage on purpose
		f.mu.Unlock()
		if !tolerate {
			f.t.Errorf("fleet: undecodable desired state at %s: %v", e.Key(), err)
		}
		return
	}
	site, role, _ := events.ParseNodeID(d.Node)
	f.mu.Lock()
	f.seen[d.Node] = append(f.seen[d.Node], d.Revision)
	if !f.down[site] && f.staleReject && d.Revision <= f.last[d.Node] && d.Rollout != "seed" {
		res := result(site, role, d, reject)
		res.Reason, res.HandledRevision = fmt.Sprintf("stale revision %d ignored", d.Revision), f.last[d.Node]
		f.notifyLocked()
		f.mu.Unlock()
		f.publish(ctx, res)
		return
	}
	if f.down[site] || d.Revision <= f.last[d.Node] {
		f.notifyLocked()
		f.mu.Unlock()
		return
	}
	f.last[d.Node] = d.Revision
	if d.Rollout == "seed" { // the node ran it before the test began
		f.notifyLocked()
		f.mu.Unlock()
		return
	}
	f.handled[d.Node] = append(f.handled[d.Node], d.Revision)
	b := f.behave(d.Node, d.Revision)
	if b == awaitOrder || b == awaitProbeFails || b == awaitHeld {
		if d.Probe != events.ProbeOnOrder {
			f.t.Errorf("fleet: %s revision %d was put without probe %s", d.Node, d.Revision, events.ProbeOnOrder)
		}
		f.awaiting[d.Node] = awaitingOrder{d: d, b: b}
		res := result(site, role, d, converge)
		res.Outcome, res.Probe = events.OutcomeAwaitingProbe, nil
		if b == awaitHeld {
			f.heldAwaiting = append(f.heldAwaiting, res)
		}
		f.notifyLocked()
		f.mu.Unlock()
		if b != awaitHeld {
			f.publish(ctx, res)
		}
		return
	}
	res := result(site, role, d, b)
	if b == hold {
		f.held = append(f.held, res)
	}
	f.notifyLocked()
	f.mu.Unlock()
	if b != silent && b != hold {
		f.publish(ctx, res)
	}
}

// order takes a probe order as a node agent does: only for the revision it
// awaits; then it reports the final result.
func (f *fleet) order(ctx context.Context, m *nats.Msg) {
	o, err := events.DecodeProbeOrder(m.Data)
	if err != nil {
		f.t.Errorf("fleet: bad probe order on %s: %v", m.Subject, err)
		return
	}
	parts := strings.Split(m.Subject, ".")
	node := events.NodeID(parts[2], parts[3])
	f.mu.Lock()
	f.orders = append(f.orders, order{node: node, o: o, at: time.Now()})
	aw, ok := f.awaiting[node]
	taken := ok && aw.d.Revision == o.Revision && aw.d.Rollout == o.Rollout
	if taken {
		delete(f.awaiting, node)
	}
	f.notifyLocked()
	f.mu.Unlock()
	ans, _ := json.Marshal(events.ProbeAnswer{Accepted: taken})
	_ = m.Respond(ans)
	if !taken {
		return
	}
	site, role, _ := events.ParseNodeID(node)
	res := result(site, role, aw.d, converge)
	switch {
	case o.Action == events.ProbeActionCancel:
		res.Outcome, res.Reason, res.Probe = events.OutcomeRolledBack, "probe: cancelled: "+o.Reason, nil
	case aw.b == awaitProbeFails:
		res.Outcome, res.Reason = events.OutcomeRolledBack, "probe: ended CONGESTION:21"
		res.Probe = &events.Probe{Number: "999", DialStatus: "CONGESTION", HangupCause: 21, Verdict: "auth_or_far_trunk"}
	}
	f.publish(ctx, res)
}

// releaseAwaiting publishes the held awaiting_probe reports.
func (f *fleet) releaseAwaiting(ctx context.Context) {
	f.mu.Lock()
	held := f.heldAwaiting
	f.heldAwaiting = nil
	f.mu.Unlock()
	for _, r := range held {
		f.publish(ctx, r)
	}
}

// ordersFor returns the orders node received, in order.
func (f *fleet) ordersFor(node string) []events.ProbeOrder {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []events.ProbeOrder
	for _, o := range f.orders {
		if o.node == node {
			out = append(out, o.o)
		}
	}
	return out
}

func result(site, role string, d events.Desired, b behaviour) events.Result {
	now := time.Now().UTC()
	res := events.Result{
		Node: events.NodeID(site, role), Revision: d.Revision, Rollout: d.Rollout, Outcome: events.OutcomeConverged,
		StartedAt: now, FinishedAt: now.Add(time.Millisecond),
		Trunk: events.TrunkState{State: "OK", RTTMS: 1.5, Reachable: true},
		Probe: &events.Probe{Number: "999", DialStatus: "CONGESTION", HangupCause: 1, Verdict: "trunk_works"},
	}
	switch b {
	case fail:
		res.Outcome, res.Reason, res.Trunk = events.OutcomeFailed, "reload: restore failed too", events.TrunkState{State: "UNKNOWN"}
	case rollBack:
		res.Outcome, res.Reason, res.Trunk = events.OutcomeRolledBack, "qualify: UNREACHABLE", events.TrunkState{State: "UNREACHABLE"}
	case reject:
		res.Outcome, res.Reason = events.OutcomeRejected, "render: bad value"
	}
	return res
}

func (f *fleet) publish(ctx context.Context, res events.Result) {
	site, role, _ := events.ParseNodeID(res.Node)
	data, id, err := events.Encode(events.NodeSource(site, role), res)
	if err != nil {
		f.t.Errorf("fleet: encode result: %v", err)
		return
	}
	_, err = f.js.PublishMsg(ctx, &nats.Msg{Subject: events.ResultSubject(site, role), Data: data, Header: nats.Header(events.PublishHeader(id))})
	if err != nil && ctx.Err() == nil {
		f.t.Errorf("fleet: publish result: %v", err)
	}
}

// release publishes the held results as converged.
func (f *fleet) release(ctx context.Context) {
	f.mu.Lock()
	held := f.held
	f.held = nil
	f.mu.Unlock()
	for _, r := range held {
		f.publish(ctx, r)
	}
}

// up brings a down site back: its nodes handle what their keys hold now.
func (f *fleet) up(ctx context.Context, site string) {
	f.mu.Lock()
	delete(f.down, site)
	f.mu.Unlock()
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		e, err := f.kv.Get(ctx, events.NodeID(site, role))
		require.NoError(f.t, err)
		f.handle(ctx, e)
	}
}

func (f *fleet) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor blocks until cond holds (checked under the fleet's lock) and fails the
// test if it does not within a generous bound; it never asserts on time.
func (f *fleet) waitFor(what string, cond func(f *fleet) bool) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		f.mu.Lock()
		ok := cond(f)
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			f.t.Fatalf("fleet: %s did not happen", what)
		}
	}
}

// sawPut reports whether node's key showed revision rev.
func (f *fleet) sawPut(node string, rev uint64) bool { return slices.Contains(f.seen[node], rev) }

func (f *fleet) handledRevs(node string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.handled[node])
}

// --- fixtures -----------------------------------------------------------------

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEngine(t testing.TB, srv *natstest.Server) *orchestrator.Engine {
	t.Helper()
	return orchestrator.New(srv.JS, srv.Conn, orchestrator.WithLogger(quiet()), orchestrator.WithRetryDelay(50*time.Millisecond))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sites(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%d", i+1)
	}
	return out
}

// trunk is a valid intent for site; port tells intents apart.
func trunk(site string, port int) events.Trunk {
	return events.Trunk{
		Site: site, Scenario: events.ScenarioLAN, PBXAddress: "192.0.2.10", PBXPort: port,
		OMLAddress: "192.0.2.20", OMLTransport: "trunk-transport", OMLPort: 5161,
		PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "oml", OMLUser: "pbx",
		Secret: "S3cret-Trunk.Key42", PBXCodecs: []string{"ulaw", "alaw"}, OMLCodecs: []string{"ulaw", "alaw"}, QualifyFrequency: 60,
	}
}

func plan(port int, names ...string) orchestrator.Plan {
	p := orchestrator.Plan{Hash: fmt.Sprintf("plan-%d", port)}
	for _, s := range names {
		p.Targets = append(p.Targets, orchestrator.Target{Site: s, Nodes: map[string]events.Trunk{
			events.RolePBX: trunk(s, port), events.RoleOML: trunk(s, port),
		}})
	}
	return p
}

// seed puts revision rev of the intent with port on both nodes of each site, as
// an earlier rollout would have.
func seed(t testing.TB, srv *natstest.Server, rev uint64, port int, names ...string) {
	t.Helper()
	ctx := testCtx(t)
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	for _, s := range names {
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			d := events.Desired{Node: events.NodeID(s, role), Revision: rev, Rollout: "seed", PlanHash: "seed", Trunk: trunk(s, port)}
			data, _, err := events.Encode(events.SourceOrchestrator, d)
			require.NoError(t, err)
			_, err = kv.Put(ctx, d.Node, data)
			require.NoError(t, err)
		}
	}
}

// keyHistory returns every desired state the node's key held, oldest first.
func keyHistory(t testing.TB, srv *natstest.Server, node string) []events.Desired {
	t.Helper()
	ctx := testCtx(t)
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	hist, err := kv.History(ctx, node)
	if err == jetstream.ErrKeyNotFound {
		return nil
	}
	require.NoError(t, err)
	var out []events.Desired
	for _, e := range hist {
		d, err := events.DecodeDesired(e.Value(), nil, node)
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

func revisions(ds []events.Desired) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Revision
	}
	return out
}

// nodes returns both node ids of each site.
func nodes(names ...string) []string {
	var out []string
	for _, s := range names {
		out = append(out, events.NodeID(s, events.RolePBX), events.NodeID(s, events.RoleOML))
	}
	return out
}

func all(b behaviour) func(string, uint64) behaviour {
	return func(string, uint64) behaviour { return b }
}

// bySite answers per site (node id prefix) and revision; converge otherwise.
func bySite(rules map[string]map[uint64]behaviour) func(string, uint64) behaviour {
	return func(node string, rev uint64) behaviour {
		site, _, _ := strings.Cut(node, ".")
		if b, ok := rules[site][rev]; ok {
			return b
		}
		return converge
	}
}

func siteOutcomes(r orchestrator.Rollout) map[string]orchestrator.SiteOutcome {
	out := map[string]orchestrator.SiteOutcome{}
	for _, s := range r.Sites {
		out[s.Site] = s.Outcome
	}
	return out
}

func dump(r orchestrator.Rollout) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

// hasReason reports whether the rollout's history records reason.
func hasReason(r orchestrator.Rollout, reason string) bool {
	for _, m := range r.Messages {
		if m.Reason == reason {
			return true
		}
	}
	return false
}
