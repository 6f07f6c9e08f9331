package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
	"github.com/pbxfleet/pbxfleet/services/web"
)

// chromium returns the headless browser the tests drive: $PBXFLEET_CHROMIUM,
// else chromium on PATH; the test skips without one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PBXFLEET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: set PBXFLEET_CHROMIUM or install Debian's chromium (.ci/run does)")
	return ""
}

// browser starts a headless Chromium and returns a tab's context.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(width, height), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("js-flags", "--expose-gc"), chromedp.Flag("enable-precise-memory-info", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	// Every confirmation the page asks for is accepted, as an operator would.
	dialogs := chromedp.Events(ctx, cdpage.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, cdpage.HandleJavaScriptDialog, cdpage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// screenshot writes what the window shows to $PBXFLEET_SCREENSHOTS/name when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("PBXFLEET_SCREENSHOTS")
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
	t.Logf("screenshot %s (%d KiB)", filepath.Join(dir, name), len(buf)>>10)
}

// attr reads an attribute of the body, the page's own summary of its state.
func attr(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	return eval[string](t, ctx, `document.body.dataset.`+name+` || ""`)
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitFor evaluates expr in the page until it is true.
func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if eval[bool](t, ctx, expr) {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText.slice(0, 3000)`))
			t.Fatalf("the page did not show %s in %s:\n%s", what, timeout, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// labFleet is a running lab fleet with its control plane and the page.
type labFleet struct {
	srv   *natstest.Server
	eng   *orchestrator.Engine
	fleet *labfleet.Fleet
	sites []labfleet.Site
	page  *httptest.Server
	web   *web.Server
	reqs  *requests
}

func startLabFleet(t *testing.T, sites []labfleet.Site, instant bool) *labFleet {
	t.Helper()
	srv := natstest.Start(t)
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	eng := orchestrator.New(srv.JS, srv.Conn, orchestrator.WithLogger(quiet))
	if !instant {
		wg.Go(func() { _ = eng.Serve(ctx) })
	}
	opts := labfleet.Options{
		Dir: t.TempDir(), NATSURL: srv.URL, Logger: quiet, Instant: instant,
		Deadlines:    node.Deadlines{Verify: 8 * time.Second, Probe: 6 * time.Second},
		PollInterval: 100 * time.Millisecond, StatusInterval: time.Second, QualifyTimeout: time.Second,
	}
	if instant {
		opts.ShareConn = true
		opts.StatusInterval = 10 * time.Second
		opts.Deadlines = node.Deadlines{Verify: 60 * time.Second, Probe: 15 * time.Second, Command: 30 * time.Second}
	}
	fleet, err := labfleet.Start(ctx, sites, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })
	w, hs, reqs := countedPage(t, srv, web.Config{Logger: quiet})
	return &labFleet{srv: srv, eng: eng, fleet: fleet, sites: sites, page: hs, web: w, reqs: reqs}
}

// rollout starts a rollout of sites with secrets through the orchestrator
// service, as `pbxfleet rollout` does.
func (l *labFleet) rollout(t *testing.T, secrets map[string]string, strategy orchestrator.Strategy) string {
	t.Helper()
	var started orchestrator.StartResponse
	require.NoError(t, orchestrator.Request(context.Background(), l.srv.Conn, events.RolloutStart, orchestrator.StartRequest{Plan: l.plan(t, secrets), Strategy: strategy}, &started))
	return started.ID
}

// run starts and drives a rollout in the test, as `pbxlab bench` does (the
// plan of 1,000 sites is larger than one request).
func (l *labFleet) run(t *testing.T, secrets map[string]string, strategy orchestrator.Strategy) (string, <-chan error) {
	t.Helper()
	r, err := l.eng.Start(context.Background(), l.plan(t, secrets), strategy)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		r, err := l.eng.Run(context.Background(), r.ID)
		if err == nil && r.Phase != orchestrator.PhaseSucceeded {
			err = fmt.Errorf("rollout %s %s: %s", r.ID, r.Phase, r.Message)
		}
		done <- err
	}()
	return r.ID, done
}

// plan plans sites with secrets over the desired states stored now.
func (l *labFleet) plan(t *testing.T, secrets map[string]string) orchestrator.Plan {
	t.Helper()
	ctx := context.Background()
	spec, err := planner.Parse(labfleet.FleetYAML(l.sites, secrets), "", planner.Options{})
	require.NoError(t, err)
	current := map[string]events.Desired{}
	kv, err := l.srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	require.NoError(t, fleethealth.EachEntry(ctx, kv, func(e jetstream.KeyValueEntry) {
		d, err := events.DecodeDesired(e.Value(), nil, e.Key())
		require.NoError(t, err)
		current[e.Key()] = d
	}))
	p, err := planner.BuildPlan(spec, current)
	require.NoError(t, err)
	return p.RolloutPlan()
}

func secretsFor(sites []labfleet.Site) map[string]string {
	out := map[string]string{}
	for _, s := range sites {
		out[s.ID] = labfleet.NewSecret()
	}
	return out
}

// waveProgress reads the strip: per wave box, its label and its cells' outcomes.
const waveProgress = `Array.from(document.querySelectorAll("#waves .wave")).map(w =>
  w.dataset.wave + ":" + Array.from(w.querySelectorAll(".cell")).map(c => c.dataset.outcome).join(","))`

// TestFleetPageInABrowser drives the page in headless Chromium against a lab
// fleet (6 sites, real agents, real SIP over loopback, the orchestrator
// service): every site shows, a rollout is watched wave by wave to success, a
// secret rotation with one stale OMniLeads host fails its site and pauses (the
// evidence, CONGESTION:21 from the probe while qualify stayed OK, is on the
// site's panel), and the rollback button (confirmed) restores the fleet.
func TestFleetPageInABrowser(t *testing.T) {
	ctx := browser(t, 1400, 1000)
	sites := labfleet.Sites("web", 3100, 6)
	l := startLabFleet(t, sites, false)

	start := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(l.page.URL)))
	waitFor(t, ctx, "every site", `document.body.dataset.sites === "6"`, 20*time.Second)
	t.Logf("page showed 6 sites %s after navigating", time.Since(start).Round(time.Millisecond))
	rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#sites tr.site")).map(r => r.dataset.site)`)
	for _, s := range sites {
		assert.Contains(t, rows, s.ID)
	}

	// The page orders a site that appears later as the server orders the
	// first snapshot.
	names := []string{"b-10", "b_1", "b-1000", "a1", "b-2", "a-1", "b-1", "a_x", "b-100", "b-2x", "b", "ab", "a-b", "b-01"}
	inBrowser := eval[[]string](t, ctx, `["`+strings.Join(names, `","`)+`"].sort(window.pbxfleetSiteOrder)`)
	slices.SortStableFunc(names, web.NaturalCompare)
	assert.Equal(t, names, inBrowser, "the browser's order of site names is the server's")

	loaded := l.reqs.take()
	assert.Equal(t, 1, loaded["GET /"], "%v", loaded)
	assert.Equal(t, 1, loaded["GET /api/events"], "one event stream: %v", loaded)

	// Rollout 1: canary, then waves of 3 and 2; the strip is read as it fills.
	first := secretsFor(sites)
	strategy := orchestrator.Strategy{Canary: 1, WaveSize: 3, SiteDeadline: 45 * time.Second,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit, OnFailure: orchestrator.OnFailureRollback}
	id := l.rollout(t, first, strategy)
	waitFor(t, ctx, "the rollout", `document.body.dataset.rollout === "`+id+`"`, 10*time.Second)
	doneAt := map[string]time.Duration{} // wave -> when all its sites converged
	var seen []string
	var lagMax time.Duration
	var lags []time.Duration
	deadline := time.Now().Add(90 * time.Second)
	sample := func() {
		t0 := time.Now()
		waves := eval[[]string](t, ctx, waveProgress)
		lag := time.Since(t0)
		lags = append(lags, lag)
		lagMax = max(lagMax, lag)
		for _, w := range waves {
			name, cells, _ := strings.Cut(w, ":")
			if _, ok := doneAt[name]; !ok && cells != "" && strings.Count(cells, "converged") == len(strings.Split(cells, ",")) {
				doneAt[name] = time.Since(start)
				seen = append(seen, name)
			}
		}
	}
	for attr(t, ctx, "phase") != string(orchestrator.PhaseSucceeded) {
		require.False(t, time.Now().After(deadline), "rollout 1 did not succeed on the page; phase %s", attr(t, ctx, "phase"))
		sample()
		time.Sleep(40 * time.Millisecond)
	}
	sample()
	waves := eval[[]string](t, ctx, waveProgress)
	assert.Empty(t, l.reqs.take(), "the page followed the rollout without a request: it is pushed, not polled")
	assert.Equal(t, []string{"1:converged", "2:converged,converged,converged", "3:converged,converged"}, waves)
	t.Logf("waves completed on the page in this order: %v (%v)", seen, doneAt)
	assert.Equal(t, []string{"1", "2", "3"}, seen, "canary, then wave 2, then wave 3")
	assert.Less(t, doneAt["1"], doneAt["2"], "the canary was seen complete before wave 2")
	assert.Less(t, doneAt["2"], doneAt["3"], "wave 2 was seen complete before wave 3")
	slices.Sort(lags)
	t.Logf("responsiveness during the rollout: %d page reads, p50 %s, max %s", len(lags), lags[len(lags)/2], lagMax)
	waitFor(t, ctx, "a healthy fleet", `document.body.dataset.unhealthy === "0"`, 20*time.Second)
	screenshot(t, ctx, "fleet.png")

	// Rollout 2: rotate every secret while one OMniLeads host keeps its old
	// configuration; the budget (0 failed) pauses the rollout.
	stale := sites[2]
	l.fleet.Host(events.NodeID(stale.ID, events.RoleOML)).SetFault(lab.FaultStale)
	strategy.OnFailure = orchestrator.OnFailurePause
	id2 := l.rollout(t, secretsFor(sites), strategy)
	waitFor(t, ctx, "rollout 2 paused by its budget", `document.body.dataset.rollout === "`+id2+`" && document.body.dataset.phase === "paused"`, 90*time.Second)
	waitFor(t, ctx, "the failed site in the strip", `!!document.querySelector('#waves .cell[data-site="`+stale.ID+`"][data-outcome="failed"]')`, 10*time.Second)
	budget, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#r-budget")))
	require.NoError(t, err)
	assert.Contains(t, budget, "1 failed of 0 allowed")
	assert.Contains(t, budget, "0 unreachable of 0 allowed")

	// The failing site's evidence: its row opens the panel.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#sites tr[data-site="`+stale.ID+`"]`))))
	waitFor(t, ctx, "the site's panel", `document.querySelector("#detail").dataset.loaded === "`+stale.ID+`"`, 10*time.Second)
	waitFor(t, ctx, "the probe's evidence", `document.querySelector("#d-body").innerText.includes("CONGESTION:21")`, 20*time.Second)
	detail, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#d-body")))
	require.NoError(t, err)
	assert.Contains(t, detail, "> database get pbxfleet probe", "the raw CLI lines that proved the verdict")
	assert.Regexp(t, `OK \(\d+ ms\)`, detail, "qualify stayed green")
	assert.Contains(t, detail, "pbxfleet_sip.conf", "the managed files' hashes")
	assert.Contains(t, detail, id2, "the revision history")
	for _, s := range first {
		assert.NotContains(t, detail, s, "no secret on the page")
	}
	_ = eval[bool](t, ctx, `(document.querySelector("#d-body .failure") || document.querySelector("#detail")).scrollIntoView(), true`)
	screenshot(t, ctx, "failing-site.png")

	// Rollback, confirmed in the dialog; the fleet ends as it was.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#actions button[data-verb="rollback"]`))))
	waitFor(t, ctx, "rollout 2 rolled back", `document.body.dataset.phase === "rolled_back"`, 90*time.Second)
	l.fleet.Host(events.NodeID(stale.ID, events.RoleOML)).SetFault(lab.FaultNone)
	waitFor(t, ctx, "every site healthy again", `document.body.dataset.unhealthy === "0" && document.body.dataset.sites === "6"`, 60*time.Second)
	for _, s := range sites {
		b, err := os.ReadFile(filepath.Join(l.fleet.ConfigDir(events.NodeID(s.ID, events.RolePBX)), "pbxfleet_sip.conf"))
		require.NoError(t, err)
		assert.Contains(t, string(b), first[s.ID], "%s runs rollout 1's secret again", s.ID)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	for _, s := range first {
		assert.NotContains(t, html, s, "no secret on the page")
	}
	_ = eval[bool](t, ctx, `window.scrollTo(0, 0), true`)
	screenshot(t, ctx, "rolled-back.png")

	// The same fleet on a read-only page: no buttons.
	_, ro := page(t, l.srv, web.Config{ReadOnly: true})
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ro.URL)))
	waitFor(t, ctx, "the read-only page", `document.body.dataset.ready === "1" && document.body.dataset.sites === "6"`, 20*time.Second)
	assert.True(t, eval[bool](t, ctx, `document.querySelector("#actions").hidden && document.querySelector("#actions").offsetParent === null`), "read-only hides the buttons")
}

// TestPageWithTheBenchFleet measures the page with the fleet `pbxlab bench`
// runs (labfleet.Sites, instant checks): the time from navigating to every
// site's row shown, and how quickly the page answers while a rollout of every
// site runs. The figures are printed, not asserted. It runs with
// PBXFLEET_WEB_BENCH_SITES=N (the README's figure is N=1000).
func TestPageWithTheBenchFleet(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PBXFLEET_WEB_BENCH_SITES"))
	if n <= 0 {
		t.Skip("set PBXFLEET_WEB_BENCH_SITES=1000 to measure the page with the bench fleet")
	}
	ctx := browser(t, 1400, 1000)
	sites := labfleet.Sites("b", 0, n)
	setup := time.Now()
	l := startLabFleet(t, sites, true)
	// A first rollout so every site has revisions, results and a probe.
	_, done := l.run(t, secretsFor(sites), orchestrator.Strategy{WaveSize: n, SiteDeadline: 5 * time.Minute, MaxFailed: n, MaxUnreachable: n,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit})
	require.NoError(t, <-done)
	t.Logf("%d sites up and rolled out once in %s", n, time.Since(setup).Round(time.Second))

	want := strconv.Itoa(n)
	var loads []time.Duration
	for range 3 {
		start := time.Now()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(l.page.URL)))
		waitFor(t, ctx, "every site", `document.body.dataset.sites === "`+want+`" && document.querySelectorAll("#sites tr.site").length === `+want, 60*time.Second)
		loads = append(loads, time.Since(start))
	}
	perf := eval[string](t, ctx, `(() => { const n = performance.getEntriesByType("navigation")[0]; return "DOMContentLoaded " + Math.round(n.domContentLoadedEventEnd) + " ms, load " + Math.round(n.loadEventEnd) + " ms" })()`)
	fmt.Printf("web page, %d sites: page load to every row shown %v (3 loads; navigation timing of the last: %s)\n", n, loads, perf)
	const heap = `(() => { gc(); return Math.round(performance.memory.usedJSHeapSize / 1024) + " KiB JS heap, " + document.getElementsByTagName("*").length + " elements" })()`
	heapBefore := eval[string](t, ctx, heap)

	// Responsiveness during a rollout of every site: the time the page takes
	// to answer a read, to apply a text filter, and the live strip's lag.
	id2, done := l.run(t, secretsFor(sites), orchestrator.Strategy{WaveSize: n / 4, SiteDeadline: 5 * time.Minute, MaxFailed: n, MaxUnreachable: n,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit})
	waitFor(t, ctx, "the rollout", `document.body.dataset.rollout === "`+id2+`"`, 30*time.Second)
	var reads, filters []time.Duration
	rolloutStart := time.Now()
	for i := 0; attr(t, ctx, "phase") != string(orchestrator.PhaseSucceeded); i++ {
		require.Less(t, time.Since(rolloutStart), 5*time.Minute)
		t0 := time.Now()
		_ = eval[int](t, ctx, `document.querySelectorAll("#waves .cell[data-outcome=converged]").length`)
		reads = append(reads, time.Since(t0))
		t0 = time.Now()
		q := fmt.Sprintf("b-%d", 1+i%n)
		shown := eval[string](t, ctx, `(() => { const f = document.querySelector("#f-text"); f.value = "`+q+`"; f.dispatchEvent(new Event("input")); return document.querySelector("#f-shown").textContent })()`)
		require.NotEqual(t, "0 of "+want+" shown", shown, q)
		filters = append(filters, time.Since(t0))
		if i == 20 {
			_ = eval[bool](t, ctx, `(() => { const f = document.querySelector("#f-text"); f.value = ""; f.dispatchEvent(new Event("input")); return true })()`)
			screenshot(t, ctx, "bench-rollout.png")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rolled := time.Since(rolloutStart)
	require.NoError(t, <-done)
	_ = eval[bool](t, ctx, `(() => { const f = document.querySelector("#f-text"); f.value = ""; f.dispatchEvent(new Event("input")); return true })()`)
	pct := func(d []time.Duration) string {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return fmt.Sprintf("p50 %s, p95 %s, max %s", d[len(d)/2].Round(time.Millisecond), d[len(d)*95/100].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	fmt.Printf("web page, %d sites, during a rollout of every site (%s, 4 waves): %d reads %s; text filter applied %s\n",
		n, rolled.Round(time.Second), len(reads), pct(reads), pct(filters))
	fmt.Printf("web page, %d sites: before the rollout %s; after it %s\n", n, heapBefore, eval[string](t, ctx, heap))
}
