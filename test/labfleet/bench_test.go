package labfleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// BenchmarkAgentPutToResult measures one agent (bench-1.pbx, against a lab PBX
// host whose OMniLeads far side is a lab host too, real SIP on loopback): the
// time from putting a desired revision to its result on the stream, over b.N
// revisions, reported as p50 and p99 in ms (server timestamps at both ends).
// With the lab's chan_sip reload lag (150 ms after `sip reload` returns, as
// real Asterisk does it, and pbx-node waits for it) and without it.
func BenchmarkAgentPutToResult(b *testing.B) {
	for _, bb := range []struct {
		name string
		lag  time.Duration
	}{
		{"reload-lag=150ms", lab.DefaultSIPReloadLag},
		{"reload-lag=0", -1},
	} {
		b.Run(bb.name, func(b *testing.B) { benchmarkAgentPutToResult(b, bb.lag) })
	}
}

func benchmarkAgentPutToResult(b *testing.B, reloadLag time.Duration) {
	srv := natstest.Start(b)
	sites := labfleet.Sites("bench", 60, 1)
	secrets := map[string]string{sites[0].ID: labfleet.NewSecret()}
	f, err := labfleet.Start(context.Background(), sites, labfleet.Options{
		Dir: b.TempDir(), NATSURL: srv.URL, PollInterval: 20 * time.Millisecond,
		Deadlines: node.Deadlines{Verify: 20 * time.Second}, StatusInterval: time.Minute, SIPReloadLag: reloadLag,
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.Close() })
	p := mustPlan(b, sites, secrets)
	pbx, oml := p.Sites[0].Nodes[0].Desired, p.Sites[0].Nodes[1].Desired
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(b, err)
	put := func(d events.Desired) time.Time {
		data, _, err := events.Encode(events.SourceOrchestrator, d)
		require.NoError(b, err)
		rev, err := kv.Put(context.Background(), d.Node, data)
		require.NoError(b, err)
		e, err := kv.GetRevision(context.Background(), d.Node, rev)
		require.NoError(b, err)
		return e.Created()
	}
	// The far side first: OMniLeads applies and waits for its probe order,
	// the PBX's first revision converges against it, then OMniLeads probes
	// too. A probe either side made before the other had its trunk would be
	// refused (cause 21), as on real Asterisk.
	results := func(role string) jetstream.Consumer {
		c, err := srv.JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.ResultSubject(sites[0].ID, role)}})
		require.NoError(b, err)
		return c
	}
	next := func(c jetstream.Consumer) (events.Result, time.Time) {
		msg, err := c.Next(jetstream.FetchMaxWait(30 * time.Second))
		require.NoError(b, err)
		md, err := msg.Metadata()
		require.NoError(b, err)
		r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		require.NoError(b, err)
		return r, md.Timestamp
	}
	omlResults, pbxResults := results(events.RoleOML), results(events.RolePBX)
	oml.Rollout, oml.Probe = "r-bench", events.ProbeOnOrder
	put(oml)
	r, _ := next(omlResults)
	require.Equal(b, events.OutcomeAwaitingProbe, r.Outcome, r.Reason)
	pbx.Revision = 1
	put(pbx)
	r, _ = next(pbxResults)
	require.Equal(b, events.OutcomeConverged, r.Outcome, r.Reason)
	order, err := json.Marshal(events.ProbeOrder{Rollout: oml.Rollout, Revision: oml.Revision, Action: events.ProbeActionProbe})
	require.NoError(b, err)
	_, err = srv.Conn.Request(events.ProbeSubject(sites[0].ID, events.RoleOML), order, 10*time.Second)
	require.NoError(b, err)
	r, _ = next(omlResults)
	require.Equal(b, events.OutcomeConverged, r.Outcome, r.Reason)

	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		d := pbx
		d.Revision = uint64(i + 2)
		d.Trunk.QualifyFrequency = 30 + i%30 // a real change each revision
		at := put(d)
		r, stored := next(pbxResults)
		require.Equal(b, events.OutcomeConverged, r.Outcome, r.Reason)
		lat = append(lat, stored.Sub(at))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

// BenchmarkAgentIdleRSS starts a real pbx-node process with nothing to do and
// reports its resident memory once it has settled.
func BenchmarkAgentIdleRSS(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "pbx-node")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/pbx-node")
	out, err := build.CombinedOutput()
	require.NoError(b, err, string(out))
	srv := natstest.Start(b)
	cfg := filepath.Join(dir, "pbx-node.yaml")
	require.NoError(b, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	require.NoError(b, os.WriteFile(cfg, []byte(fmt.Sprintf(
		"node: idle-1.pbx\nnats: {url: %q}\nconfig_dir: %q\nstate_dir: %q\ncommand: [\"true\"]\n",
		srv.URL, filepath.Join(dir, "etc"), filepath.Join(dir, "state"))), 0o600))
	var rss float64
	for range b.N {
		p := proctest.Start(b, "pbx-node", bin, "--config", cfg, "--log-level", "warn")
		time.Sleep(2 * time.Second) // let it settle: connected, watching, idle
		// An agent that exited (a bad config) has no RSS to report: a zero
		// would pass for a figure.
		require.False(b, p.Exited(), "pbx-node exited: %s", proctest.Tail(p.Output(), 10))
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
		require.NoError(b, err)
		rss = 0
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				require.NoError(b, err, l)
				rss = kb / 1024
			}
		}
		require.Positive(b, rss, "VmRSS in /proc/%d/status", p.PID())
		p.Stop()
	}
	b.ReportMetric(rss, "idle-RSS-MiB")
}
