package fault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// hostileCount is how many malformed or hostile desired states the test puts.
const hostileCount = 1000

// Kinds of hostile desired states.
const (
	kindGarbage   = "garbage bytes"
	kindMangled   = "mangled JSON"
	kindWrongType = "wrong types"
	kindEventType = "wrong event type"
	kindWrongNode = "wrong node/subject"
	kindInjected  = "injected config values"
	kindSealed    = "sealed secret it cannot open"
	kindOversized = "oversized (near 64 KiB)"
	kindReplay    = "replayed old revision"
)

// hostile is one value put on the agent's key.
type hostile struct {
	kind string
	what string
	data []byte
}

// injections are values that must never reach a .conf file: each escapes its
// field (a new section, an #include, a dialplan line, a NUL, ...).
var injections = []string{
	"issabel]\n[evil", "#include /etc/passwd", "#exec /bin/sh -c id", "x\n#include /etc/shadow",
	"trunk;comment", "a\x7fb", "evil\r\ntype=friend", "\x00issabel", "ïssabel", "issabel\ninsecure=very",
	"_X.\nexten => _X.,1,System(id)", "../../etc/passwd\n", "${SHELL}", "$(id)", "`id`", "[general]",
	"ulaw\nallow=all", "5060;transport=tcp", "127.0.0.1\n[evil]", "99999\n", "0980;98", "=>", "\t", "\u00a0",
}

// hostileFields replaces one trunk field with a hostile value.
var hostileFields = []func(t *events.Trunk, v string){
	func(t *events.Trunk, v string) { t.PBXTrunkName = v },
	func(t *events.Trunk, v string) { t.OMLTrunkName = v },
	func(t *events.Trunk, v string) { t.PBXUser = v },
	func(t *events.Trunk, v string) { t.OMLUser = v },
	func(t *events.Trunk, v string) { t.Secret = v },
	func(t *events.Trunk, v string) { t.PBXAddress = v },
	func(t *events.Trunk, v string) { t.OMLAddress = v },
	func(t *events.Trunk, v string) { t.OMLTransport = v },
	func(t *events.Trunk, v string) { t.PBXCodecs = []string{"ulaw", v} },
	func(t *events.Trunk, v string) { t.OMLCodecs = []string{v} },
	func(t *events.Trunk, v string) { t.DIDs = []events.DID{{Number: v}} },
	func(t *events.Trunk, v string) { t.DIDs = []events.DID{{Number: "098098", Extension: v}} },
	func(t *events.Trunk, v string) {
		t.Agents = append(slices.Clone(t.Agents), events.Agent{ID: "9", SIPNumber: "1009", Name: v})
	},
	func(t *events.Trunk, v string) { t.Agents = []events.Agent{{ID: v, SIPNumber: "1006"}} },
	func(t *events.Trunk, v string) { t.AgentPattern = v },
	func(t *events.Trunk, v string) { t.ProbeNumber = v },
}

// hostileGen builds the hostile values for one node, keeping track of the
// revisions so that every value gets an answer: a decodable desired state
// carries a fresh revision, which the agent refuses for its content without
// raising its stale floor; a replay carries one strictly older than the
// revision the agent runs (the one it runs would be skipped silently by design).
type hostileGen struct {
	t        *testing.T
	rnd      *rand.Rand
	valid    events.Desired
	validRaw []byte
	nextRev  uint64
	lastSeen uint64
}

func (g *hostileGen) fresh() uint64 {
	r := g.nextRev
	g.nextRev++
	return r
}

func (g *hostileGen) encode(d events.Desired) []byte {
	g.t.Helper()
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	require.NoError(g.t, err, "encode %s rev %d", d.Node, d.Revision)
	return data
}

func (g *hostileGen) desired() events.Desired {
	d := g.valid
	d.Trunk.PBXCodecs = slices.Clone(d.Trunk.PBXCodecs)
	d.Trunk.OMLCodecs = slices.Clone(d.Trunk.OMLCodecs)
	d.Trunk.DIDs = slices.Clone(d.Trunk.DIDs)
	d.Trunk.Agents = slices.Clone(d.Trunk.Agents)
	d.Revision = g.fresh()
	return d
}

func (g *hostileGen) make(kind string) hostile {
	switch kind {
	case kindGarbage:
		n := 1 + g.rnd.IntN(4096)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(g.rnd.IntN(256))
		}
		if g.rnd.IntN(8) == 0 {
			b = b[:0] // an empty value
		}
		return hostile{kind, fmt.Sprintf("%d random bytes", len(b)), b}
	case kindMangled:
		raw := g.encode(g.desired())
		switch g.rnd.IntN(6) {
		case 0:
			return hostile{kind, "truncated event", raw[:g.rnd.IntN(len(raw))]}
		case 1:
			return hostile{kind, "event + trailing bytes", append(slices.Clone(raw), []byte(`{"x":1}`)...)}
		case 2:
			return hostile{kind, "nested arrays", []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))}
		case 3:
			// Between two members: inside a string value encoding/json would
			// silently turn it into U+FFFD (see the README's gaps).
			b := bytes.Replace(raw, []byte(`,"data":`), []byte(",\xff\"data\":"), 1)
			return hostile{kind, "invalid UTF-8 byte between members", b}
		case 4:
			return hostile{kind, "BOM + event", append([]byte("\xef\xbb\xbf"), raw...)}
		default:
			return hostile{kind, "JSON of another shape", []byte(`["pbxfleet.desired.v1", 2, null, {"node": "` + g.valid.Node + `"}]`)}
		}
	case kindWrongType:
		return g.wrongType()
	case kindEventType:
		site, role, _ := events.ParseNodeID(g.valid.Node)
		now := time.Now().UTC()
		var p events.Payload = events.Result{Node: g.valid.Node, Revision: g.fresh(), Outcome: events.OutcomeConverged,
			StartedAt: now, FinishedAt: now, Trunk: events.TrunkState{State: "OK", Reachable: true}}
		if g.rnd.IntN(2) == 0 {
			p = events.Status{Node: g.valid.Node, AppliedRevision: g.fresh(), Version: "evil", At: now, Trunk: events.TrunkState{State: "OK"}}
		}
		data, _, err := events.Encode(events.NodeSource(site, role), p)
		require.NoError(g.t, err)
		return hostile{kind, p.EventType() + " event", data}
	case kindWrongNode:
		d := g.desired()
		switch g.rnd.IntN(3) {
		case 0:
			site, _, _ := events.ParseNodeID(d.Node)
			d.Node = events.NodeID(site, events.RoleOML)
			return hostile{kind, "desired state of the OML node", g.encode(d)}
		case 1:
			d.Node, d.Trunk.Site = "other-1.pbx", "other-1"
			return hostile{kind, "desired state of another site", g.encode(d)}
		default:
			m := g.dataMap(d)
			m["data"].(map[string]any)["trunk"].(map[string]any)["site"] = "other-1"
			return hostile{kind, "trunk.site of another site", g.marshal(m)}
		}
	case kindInjected:
		d := g.desired()
		v := injections[g.rnd.IntN(len(injections))]
		f := g.rnd.IntN(len(hostileFields))
		hostileFields[f](&d.Trunk, v)
		return hostile{kind, fmt.Sprintf("field #%d = %q", f, v), g.encode(d)}
	case kindSealed:
		d := g.desired()
		d.Trunk.Secret = ""
		d.Trunk.SealedSecret = base64.StdEncoding.EncodeToString([]byte("not sealed to this node"))
		d.Trunk.SealedBy = "XEVIL"
		return hostile{kind, "sealed secret", g.encode(d)}
	case kindOversized:
		if g.rnd.IntN(2) == 0 {
			n := events.MaxEventBytes - g.rnd.IntN(64)
			b := bytes.Repeat([]byte("A"), n)
			copy(b, `{"specversion":"1.0","data":"`)
			return hostile{kind, fmt.Sprintf("%d bytes of padding", n), b}
		}
		d := g.desired()
		target := events.MaxEventBytes - 1 - g.rnd.IntN(256)
		d.Trunk.PBXTrunkName = "x"
		base := len(g.encode(d))
		d.Trunk.PBXTrunkName = strings.Repeat("x", 1+target-base)
		data := g.encode(d)
		return hostile{kind, fmt.Sprintf("valid envelope of %d bytes, a %d-byte trunk name", len(data), len(d.Trunk.PBXTrunkName)), data}
	case kindReplay:
		var pool []hostile
		if g.lastSeen > g.valid.Revision {
			pool = append(pool, hostile{kindReplay, fmt.Sprintf("revision %d (the applied one)", g.valid.Revision), g.validRaw})
		}
		require.NotEmpty(g.t, pool, "a replay needs an older revision")
		h := pool[g.rnd.IntN(len(pool))]
		return hostile{kind, "replay of " + h.what, h.data}
	}
	g.t.Fatalf("unknown kind %q", kind)
	return hostile{}
}

// dataMap returns d's event as a generic JSON object, to break it.
func (g *hostileGen) dataMap(d events.Desired) map[string]any {
	var m map[string]any
	require.NoError(g.t, json.Unmarshal(g.encode(d), &m))
	return m
}

func (g *hostileGen) marshal(m map[string]any) []byte {
	b, err := json.Marshal(m)
	require.NoError(g.t, err)
	return b
}

// wrongType breaks one attribute or field of a valid event.
func (g *hostileGen) wrongType() hostile {
	m := g.dataMap(g.desired())
	data := m["data"].(map[string]any)
	trunk := data["trunk"].(map[string]any)
	muts := []struct {
		what string
		do   func()
	}{
		{"revision as a string", func() { data["revision"] = fmt.Sprint(data["revision"]) }},
		{"negative revision", func() { data["revision"] = -1 }},
		{"fractional revision", func() { data["revision"] = 2.5 }},
		{"revision beyond uint64", func() { data["revision"] = json.Number("1e30") }},
		{"revision 0", func() { data["revision"] = 0 }},
		{"trunk as an array", func() { data["trunk"] = []any{1, 2} }},
		{"trunk as a string", func() { data["trunk"] = "[evil]" }},
		{"port as a string", func() { trunk["pbx_port"] = "5060" }},
		{"port 0", func() { trunk["oml_port"] = 0 }},
		{"port 70000", func() { trunk["pbx_port"] = 70000 }},
		{"codecs as a string", func() { trunk["pbx_codecs"] = "ulaw" }},
		{"dids as an object", func() { trunk["dids"] = map[string]any{"number": "1"} }},
		{"node as a number", func() { data["node"] = 5 }},
		{"null trunk", func() { data["trunk"] = nil }},
		{"no trunk", func() { delete(data, "trunk") }},
		{"unknown data field", func() { data["command"] = "rm -rf /" }},
		{"unknown trunk field", func() { trunk["config_dir"] = "/etc" }},
		{"null data", func() { m["data"] = nil }},
		{"no data", func() { delete(m, "data") }},
		{"spec version 0.3", func() { m["specversion"] = "0.3" }},
		{"unknown event type", func() { m["type"] = "pbxfleet.exec.v1" }},
		{"no id", func() { delete(m, "id") }},
		{"no source", func() { delete(m, "source") }},
		{"subject of another node", func() { m["subject"] = "other-1.pbx" }},
		{"no subject", func() { delete(m, "subject") }},
		{"data content type text/plain", func() { m["datacontenttype"] = "text/plain" }},
		{"data as base64", func() { delete(m, "data"); m["data_base64"] = "e30=" }},
	}
	mu := muts[g.rnd.IntN(len(muts))]
	mu.do()
	return hostile{kindWrongType, mu.what, g.marshal(m)}
}

// hostileSet returns n hostile values in a shuffled, reproducible order; the
// first is a decodable one so that replays always have an older revision.
func hostileSet(g *hostileGen, n int) []hostile {
	weights := []struct {
		kind string
		n    int
	}{
		{kindGarbage, 200}, {kindMangled, 100}, {kindWrongType, 150}, {kindEventType, 40}, {kindWrongNode, 80},
		{kindInjected, 250}, {kindSealed, 30}, {kindOversized, 50}, {kindReplay, 100},
	}
	var kinds []string
	for _, w := range weights {
		for range w.n {
			kinds = append(kinds, w.kind)
		}
	}
	require.Len(g.t, kinds, n)
	g.rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	i := slices.Index(kinds, kindInjected)
	kinds[0], kinds[i] = kinds[i], kinds[0]
	// The agent skips a value identical to the one it read last (a
	// resubscription delivers it again), so two replays never follow each
	// other: the second would get no answer, by design.
	for i := 1; i < len(kinds); i++ {
		if kinds[i] != kindReplay || kinds[i-1] != kindReplay {
			continue
		}
		for j := i + 1; j < len(kinds); j++ {
			if kinds[j] != kindReplay && (j+1 == len(kinds) || kinds[j+1] != kindReplay) {
				kinds[i], kinds[j] = kinds[j], kinds[i]
				break
			}
		}
	}
	out := make([]hostile, n)
	for i, k := range kinds {
		out[i] = g.make(k)
	}
	return out
}

// TestHostileDesiredStates puts 1,000 malformed or hostile values on a running
// agent's desired key, one at a time: each is rejected with a reason, nothing
// is written, and the agent then converges a valid revision.
func TestHostileDesiredStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	sites := labfleet.Sites("evil", addrHostile, 1)
	plan := fleetPlan(t, sites)
	fleet := startLabFleet(t, sites, srv.URL)
	pbxPlan, omlPlan := plan.Sites[0].Nodes[0], plan.Sites[0].Nodes[1]
	target := pbxPlan.Desired.Node
	site, role, _ := events.ParseNodeID(target)

	validRaw, _, err := events.Encode(events.SourceOrchestrator, pbxPlan.Desired)
	require.NoError(t, err)
	startOrchestratorService(t, srv.JS, srv.Conn)
	putDesiredOnOrder(ctx, t, srv.JS, pbxPlan.Desired)
	putDesiredOnOrder(ctx, t, srv.JS, omlPlan.Desired)
	proctest.Eventually(t, 40*time.Second, "revision 1 converges", func() (bool, string) {
		all := allResults(ctx, t, srv.JS)
		p, o := resultsFor(all, target, 1), resultsFor(all, omlPlan.Desired.Node, 1)
		return len(p) == 1 && len(o) == 1 && p[0].res.Outcome == events.OutcomeConverged && o[0].res.Outcome == events.OutcomeConverged,
			fmt.Sprintf("%d pbx, %d oml results", len(p), len(o))
	})
	// Revision 2 of the same intent, so that revision 1 is strictly older than
	// the one the agent runs: its replays are stale.
	second := pbxPlan.Desired
	second.Revision = 2
	putDesired(ctx, t, srv.JS, second)
	proctest.Eventually(t, 40*time.Second, "revision 2 converges", func() (bool, string) {
		p := resultsFor(allResults(ctx, t, srv.JS), target, 2)
		return len(p) == 1 && p[0].res.Outcome == events.OutcomeConverged, fmt.Sprintf("%d pbx results", len(p))
	})
	confDir := fleet.ConfigDir(target)
	stateDir := filepath.Join(filepath.Dir(confDir), "state")
	omlConf := fleet.ConfigDir(omlPlan.Desired.Node)
	before, omlBefore := snapshot(t, confDir), snapshot(t, omlConf)

	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	info, err := srv.JS.Stream(ctx, events.StreamResults)
	require.NoError(t, err)
	startSeq := info.CachedInfo().State.LastSeq
	// From a sequence, not DeliverNew: an ordered consumer that is reset before
	// it delivered anything (a missed heartbeat on a loaded machine) starts over
	// with its deliver policy, and "new" would then skip what came meanwhile.
	c, err := srv.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubject(site, role)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: startSeq + 1,
	})
	require.NoError(t, err)

	tooBig := bytes.Repeat([]byte("B"), events.MaxEventBytes+1)
	_, err = kv.Put(ctx, target, tooBig)
	require.Error(t, err, "the bucket refuses a value over 64 KiB")
	t.Logf("checked: %s refuses a %d-byte value (%v); it never reaches the agent", events.BucketDesired, len(tooBig), err)

	g := &hostileGen{t: t, rnd: rand.New(rand.NewPCG(6, 4)), valid: pbxPlan.Desired, validRaw: validRaw,
		nextRev: second.Revision + 1, lastSeen: second.Revision}
	set := hostileSet(g, hostileCount)
	kinds := map[string]int{}
	reasons := map[string]int{}
	for i, h := range set {
		_, err := kv.Put(ctx, target, h.data)
		require.NoError(t, err, "put #%d (%s: %s, %d bytes)", i, h.kind, h.what, len(h.data))
		msg, err := c.Next(jetstream.FetchMaxWait(15 * time.Second))
		require.NoError(t, err, "a result for #%d (%s: %s)", i, h.kind, h.what)
		r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		require.NoError(t, err)
		require.Equal(t, events.OutcomeRejected, r.Outcome, "#%d (%s: %s): %s", i, h.kind, h.what, r.Reason)
		require.NotEmpty(t, r.Reason)
		kinds[h.kind]++
		reasons[reasonClass(r.Reason)]++
		if i%100 == 99 {
			require.Empty(t, sameFiles(before, snapshot(t, confDir)), "after #%d the managed files are unchanged", i)
			require.Empty(t, tempFiles(t, confDir, stateDir))
		}
	}
	t.Logf("injected: %d values on %s, one at a time: %s", len(set), target, counts(kinds))
	require.Empty(t, sameFiles(before, snapshot(t, confDir)))
	require.Empty(t, sameFiles(omlBefore, snapshot(t, omlConf)))
	require.Empty(t, tempFiles(t, confDir, stateDir))
	total := 0
	for _, n := range reasons {
		total += n
	}
	require.Equal(t, hostileCount, total)
	t.Logf("checked: %d rejected results == %d injected, each with a reason (%s); every file of both config dirs byte-identical throughout (checked every 100), no temp file",
		total, hostileCount, counts(reasons))

	final := pbxPlan.Desired
	final.Revision = g.nextRev
	putDesired(ctx, t, srv.JS, final)
	msg, err := c.Next(jetstream.FetchMaxWait(40 * time.Second))
	require.NoError(t, err)
	r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
	require.NoError(t, err)
	require.Equal(t, final.Revision, r.Revision)
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	tr := intent.ToTrunk(final.Trunk)
	tr.Revision, tr.Secret = final.Revision, final.Trunk.Secret
	want, err := asterisk.RenderPBX(tr, asterisk.DefaultPBXFiles())
	require.NoError(t, err)
	after := snapshot(t, confDir)
	for _, f := range want.Files {
		require.True(t, bytes.Equal(f.Content, after[f.Name]), "%s holds revision %d whole", f.Name, final.Revision)
	}
	all := allResults(ctx, t, srv.JS)
	since := 0
	for _, sr := range all {
		if sr.seq > startSeq && sr.res.Node == target {
			since++
		}
	}
	require.Equal(t, hostileCount+1, since, "no result other than the %d rejections and the final one", hostileCount)
	t.Logf("checked: the agent kept serving: revision %d converged (probe %s) and its files are the render of it, byte for byte; %d results in all since the first injection",
		final.Revision, r.Probe.Verdict, since)
}

// reasonClass sorts a rejection reason for the summary.
func reasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, "desired state at key"):
		return "undecodable"
	case strings.HasPrefix(reason, "stale revision"):
		return "stale"
	case strings.HasPrefix(reason, "render:"):
		return "unsafe value"
	case strings.HasPrefix(reason, "secret:"):
		return "secret"
	}
	return "other: " + reason
}

// counts formats a tally in a stable order.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
