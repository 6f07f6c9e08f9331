package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/web"
)

// page starts the page's feed and HTTP server against srv.
func page(t *testing.T, srv *natstest.Server, cfg web.Config) (*web.Server, *httptest.Server) {
	t.Helper()
	w, hs, _ := countedPage(t, srv, cfg)
	return w, hs
}

// requests counts the requests a page server received, by method and path.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n = map[string]int{}
	return n
}

// countedPage is page, counting the requests.
func countedPage(t *testing.T, srv *natstest.Server, cfg web.Config) (*web.Server, *httptest.Server, *requests) {
	t.Helper()
	cfg.NC, cfg.JS = srv.Conn, srv.JS
	w := web.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	reqs := &requests{n: map[string]int{}}
	h := w.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		reqs.mu.Lock()
		reqs.n[r.Method+" "+r.URL.Path]++
		reqs.mu.Unlock()
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the page's feed did not read the buckets")
	}
	return w, hs, reqs
}

func putStatus(t *testing.T, srv *natstest.Server, st events.Status) {
	t.Helper()
	data, _, err := events.Encode(events.SourcePrefix+"test", st)
	require.NoError(t, err)
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketStatus)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), st.Node, data)
	require.NoError(t, err)
}

func status(node string, rev uint64, healthy bool) events.Status {
	st := events.Status{Node: node, AppliedRevision: rev, Trunk: events.TrunkState{State: "OK", RTTMS: 1.5, Reachable: true},
		Healthy: healthy, Version: "test", At: time.Now().UTC()}
	if !healthy {
		st.Trunk.State, st.Detail = "UNREACHABLE", "trunk UNREACHABLE: cannot carry calls"
	}
	return st
}

type sseEvent struct {
	name string
	data string
}

// readEvents reads the event stream into a channel until the body closes.
func readEvents(t *testing.T, body io.ReadCloser) <-chan sseEvent {
	t.Helper()
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "the event stream ended")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s")
	}
	return sseEvent{}
}

// TestEventsSnapshotThenChanges: the stream starts with the whole fleet, then
// sends each change as it is stored (the KV watch), judged by the same rule as
// `pbxfleet status`.
func TestEventsSnapshotThenChanges(t *testing.T) {
	srv := natstest.Start(t)
	putStatus(t, srv, status("s-1.pbx", 0, true))
	putStatus(t, srv, status("s-1.oml", 0, true))
	_, hs := page(t, srv, web.Config{})

	resp, err := http.Get(hs.URL + "/api/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	evs := readEvents(t, resp.Body)
	ev := next(t, evs)
	require.Equal(t, "snapshot", ev.name)
	var snap web.Snapshot
	require.NoError(t, json.Unmarshal([]byte(ev.data), &snap))
	require.Len(t, snap.Sites, 1)
	assert.Equal(t, "s-1", snap.Sites[0].Site)
	assert.True(t, snap.Sites[0].Healthy)
	assert.Len(t, snap.Sites[0].Nodes, 2)

	putStatus(t, srv, status("s-1.oml", 0, false))
	ev = next(t, evs)
	require.Equal(t, "batch", ev.name)
	var batch []struct {
		T  string       `json:"t"`
		ID string       `json:"id"`
		V  web.SiteView `json:"v"`
	}
	require.NoError(t, json.Unmarshal([]byte(ev.data), &batch))
	require.Len(t, batch, 1)
	assert.Equal(t, "site", batch[0].T)
	assert.False(t, batch[0].V.Healthy)
	assert.Equal(t, "trunk UNREACHABLE: cannot carry calls", batch[0].V.Nodes[1].Problem)

	// A second site appears in the same stream.
	putStatus(t, srv, status("s-2.pbx", 0, true))
	ev = next(t, evs)
	assert.Contains(t, ev.data, `"s-2"`)
}

// TestSlowClientIsResynced: a client that does not read while more keys change
// than its backlog holds is sent the whole state again, not every change: the
// server keeps no more per client than ClientBacklog keys.
func TestSlowClientIsResynced(t *testing.T) {
	srv := natstest.Start(t)
	w, hs := page(t, srv, web.Config{ClientBacklog: 3, MinInterval: 2 * time.Second})
	resp, err := http.Get(hs.URL + "/api/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	evs := readEvents(t, resp.Body)
	require.Equal(t, "snapshot", next(t, evs).name)
	require.Eventually(t, func() bool { return w.Clients() == 1 }, 5*time.Second, 10*time.Millisecond)
	// The first change is written at once; the next ones wait for MinInterval,
	// and overflow the backlog of 3 meanwhile.
	putStatus(t, srv, status("a-0.pbx", 0, true))
	assert.Equal(t, "batch", next(t, evs).name)
	for _, s := range []string{"a-1", "a-2", "a-3", "a-4", "a-5"} {
		putStatus(t, srv, status(s+".pbx", 0, true))
	}
	ev := next(t, evs)
	require.Equal(t, "snapshot", ev.name, "a client behind by more than its backlog is resynced")
	var snap web.Snapshot
	require.NoError(t, json.Unmarshal([]byte(ev.data), &snap))
	assert.Len(t, snap.Sites, 6)
}

// TestReadOnlyRefusesPosts: with ReadOnly the page hides its buttons (the
// snapshot says so) and the server refuses every verb.
func TestReadOnlyRefusesPosts(t *testing.T) {
	srv := natstest.Start(t)
	_, hs := page(t, srv, web.Config{ReadOnly: true})
	for _, verb := range []string{"pause", "resume", "abort", "rollback"} {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/rollout/"+verb, strings.NewReader(`{}`))
		req.Header.Set("X-Pbxfleet-Action", "1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, verb)
		assert.Contains(t, string(b), "read-only")
	}
	resp, err := http.Get(hs.URL + "/api/snapshot")
	require.NoError(t, err)
	var snap web.Snapshot
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&snap))
	resp.Body.Close()
	assert.True(t, snap.ReadOnly)
}

// TestVerbsGoThroughTheOrchestratorService: a button's POST is a request to
// pbxfleet.rollout.<verb>, as the CLI sends; without an action header (a form
// posted from another site) it is refused.
func TestVerbsGoThroughTheOrchestratorService(t *testing.T) {
	srv := natstest.Start(t)
	got := make(chan string, 1)
	sub, err := srv.Conn.Subscribe(events.RolloutSubject(events.RolloutPause), func(m *nats.Msg) {
		got <- string(m.Data)
		_ = m.Respond([]byte(`{"id":"r-1","phase":"paused"}`))
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()
	_, hs := page(t, srv, web.Config{})

	resp, err := http.Post(hs.URL+"/api/rollout/pause", "application/json", strings.NewReader(`{"id":"r-1"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no action header")

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/rollout/pause", strings.NewReader(`{"id":"r-1"}`))
	req.Header.Set("X-Pbxfleet-Action", "1")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.JSONEq(t, `{"id":"r-1"}`, <-got)
	assert.Contains(t, string(b), `"paused"`)

	req, _ = http.NewRequest(http.MethodPost, hs.URL+"/api/rollout/start", strings.NewReader(`{}`))
	req.Header.Set("X-Pbxfleet-Action", "1")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the page starts no rollout")
}

// TestAuthAsksForTheToken: with a token every page and API answer needs it (a
// cookie set by the login form, or a bearer header); the login page is all an
// unauthenticated browser sees.
func TestAuthAsksForTheToken(t *testing.T) {
	srv := natstest.Start(t)
	const token = "0123456789abcdef0123456789abcdef"
	_, hs := page(t, srv, web.Config{Token: token})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.Get(hs.URL + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, string(b), `name="token"`)
	for _, path := range []string{"/api/snapshot", "/api/events", "/api/site/x"} {
		resp, err := noRedirect.Get(hs.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}

	resp, err = noRedirect.PostForm(hs.URL+"/login", url.Values{"token": {"wrong"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Empty(t, resp.Cookies())

	resp, err = noRedirect.PostForm(hs.URL+"/login", url.Values{"token": {token}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Len(t, resp.Cookies(), 1)
	c := resp.Cookies()[0]
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)

	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/", nil)
	req.AddCookie(c)
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), `id="sites"`)

	req, _ = http.NewRequest(http.MethodGet, hs.URL+"/api/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	var snap web.Snapshot
	require.NoError(t, json.Unmarshal(raw, &snap))
	assert.True(t, snap.Auth)
	// The bytes as sent, not a decoded copy: a field the type lacks would be
	// dropped by decoding.
	assert.NotContains(t, string(raw), token, "the token is never sent back")
}

// TestNoSecretReachesThePage: desired states (sealed or clear secrets) never
// leave the server, and a CLI line that prints a secret shows <hidden>.
func TestNoSecretReachesThePage(t *testing.T) {
	srv := natstest.Start(t)
	const secret = "Sup3rSecretTrunkPassw0rd"
	d := events.Desired{Node: "s-1.oml", Revision: 2, Trunk: events.Trunk{
		Site: "s-1", Scenario: events.ScenarioLAN, PBXAddress: "10.0.0.2", PBXPort: 5060, OMLAddress: "10.0.0.3", OMLTransport: "udp", OMLPort: 5162,
		PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "issabel", OMLUser: "omnileads", Secret: secret,
		PBXCodecs: []string{"alaw"}, OMLCodecs: []string{"alaw"}, QualifyFrequency: 60,
	}}
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	require.NoError(t, err)
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), d.Node, data)
	require.NoError(t, err)
	now := time.Now().UTC()
	res := events.Result{Node: "s-1.oml", Revision: 2, Outcome: events.OutcomeConverged, StartedAt: now, FinishedAt: now,
		Trunk: events.TrunkState{State: "Avail", RTTMS: 1},
		Checks: []events.Check{{Name: "trunk_object", Passed: true, Detail: "endpoint issabel exists", Raw: []string{
			"> pjsip show endpoint issabel", "    password           : " + secret, "  Secret       : <Set>", " md5secret=" + secret}}}}
	rdata, hdr, err := events.Encode(events.NodeSource("s-1", "oml"), res)
	require.NoError(t, err)
	_ = hdr
	_, err = srv.JS.Publish(context.Background(), events.ResultSubject("s-1", "oml"), rdata)
	require.NoError(t, err)
	_, hs := page(t, srv, web.Config{})

	var detail web.SiteDetail
	require.Eventually(t, func() bool {
		resp, err := http.Get(hs.URL + "/api/site/s-1")
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		defer resp.Body.Close()
		detail = web.SiteDetail{}
		return json.NewDecoder(resp.Body).Decode(&detail) == nil && len(detail.Nodes) == 1 && detail.Nodes[0].Last != nil
	}, 10*time.Second, 50*time.Millisecond)
	raw := detail.Nodes[0].Last.Checks[0].Raw
	assert.Equal(t, "    password           : <hidden>", raw[1])
	assert.Equal(t, "  Secret       : <Set>", raw[2], "<Set> says nothing and stays")
	assert.Equal(t, " md5secret=<hidden>", raw[3])
	assert.Equal(t, uint64(2), detail.SiteView.Nodes[0].DesiredRevision)
	for _, path := range []string{"/api/snapshot", "/api/site/s-1"} {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.NotContains(t, string(b), secret, path)
		assert.NotContains(t, string(b), "sealed", path)
	}
}

// TestListenIsLoopbackUnlessAllowed.
func TestListenIsLoopbackUnlessAllowed(t *testing.T) {
	_, err := web.Listen("0.0.0.0:0", false)
	assert.ErrorContains(t, err, "not a loopback address")
	_, err = web.Listen(":0", false)
	assert.Error(t, err)
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		ln, err := web.Listen(addr, false)
		if addr == "[::1]:0" && err != nil {
			continue // no IPv6 loopback here
		}
		require.NoError(t, err, addr)
		ln.Close()
	}
	ln, err := web.Listen("0.0.0.0:0", true)
	require.NoError(t, err)
	ln.Close()
}
