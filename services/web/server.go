// Package web serves pbxfleet's fleet page: one HTML page (assets embedded,
// nothing fetched at run time, no build step) that shows every site's nodes,
// the current rollout live with its waves and failure budget, a site's
// evidence and revision history, and the last rollouts; its buttons pause,
// resume, abort and roll back through the orchestrator service, as the CLI
// does. The page is kept live with Server-Sent Events fed by KV watches and
// the results stream: nothing polls. Each client's backlog is a set of the
// keys that changed (a site, a rollout, a rollout's site), bounded by
// Config.ClientBacklog; a client that falls further behind is sent the whole
// state again (a resync) instead, so memory does not grow with time.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/wait"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

//go:embed assets
var assets embed.FS

// Config configures a Server.
type Config struct {
	// NC carries the buttons' requests to the orchestrator service; JS feeds
	// the page (Run).
	NC *nats.Conn
	JS jetstream.JetStream
	// ReadOnly hides the buttons and refuses every POST.
	ReadOnly bool
	// Token, when set, is the operator's credential: the page asks for it
	// (then keeps it in an HttpOnly cookie), or a client sends it as
	// "Authorization: Bearer <token>".
	Token string
	// ClientBacklog is how many changed keys a client may have unsent before it
	// is resynced with the whole state; default 4096.
	ClientBacklog int
	// MinInterval is the least time between two writes to one client (changes
	// in between are sent together); default 100ms.
	MinInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Server is the fleet page's HTTP server and its live state.
type Server struct {
	cfg       Config
	log       *slog.Logger
	mu        sync.RWMutex
	st        *state
	ready     chan struct{}
	readyOnce sync.Once

	cmu     sync.Mutex
	clients map[*client]struct{}
}

// New returns a server; Run feeds it, Handler serves it.
func New(cfg Config) *Server {
	if cfg.ClientBacklog <= 0 {
		cfg.ClientBacklog = 4096
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, st: newState(), ready: make(chan struct{}), clients: map[*client]struct{}{}}
}

// client is one open event stream: the keys that changed since its last write.
type client struct {
	mu     sync.Mutex
	dirty  map[string]struct{}
	resync bool
	wake   chan struct{}
}

// touch marks keys changed for every client and wakes them. A client whose
// backlog would exceed ClientBacklog drops it and is resynced instead.
func (s *Server) touch(keys ...string) {
	if len(keys) == 0 {
		return
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for c := range s.clients {
		c.mu.Lock()
		if !c.resync {
			for _, k := range keys {
				c.dirty[k] = struct{}{}
			}
			if len(c.dirty) > s.cfg.ClientBacklog {
				c.dirty, c.resync = map[string]struct{}{}, true
			}
		}
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Clients returns the number of open event streams.
func (s *Server) Clients() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return len(s.clients)
}

// Snapshot is the whole state the page starts from (and a resync sends).
type Snapshot struct {
	ReadOnly     bool                     `json:"read_only"`
	Auth         bool                     `json:"auth"`
	Now          time.Time                `json:"now"`
	Sites        []SiteView               `json:"sites"`
	Rollouts     []RolloutHeader          `json:"rollouts"`
	Current      string                   `json:"current,omitempty"`
	CurrentSites []orchestrator.SiteState `json:"current_sites,omitempty"`
}

func (s *Server) snapshot() Snapshot {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := Snapshot{ReadOnly: s.cfg.ReadOnly, Auth: s.cfg.Token != "", Now: now, Current: s.st.current, Rollouts: s.st.headers(now), Sites: []SiteView{}}
	for _, id := range s.st.sortedSites() {
		if v, ok := s.st.siteView(id, now); ok {
			snap.Sites = append(snap.Sites, v)
		}
	}
	snap.CurrentSites = s.st.rolloutSites(s.st.current)
	return snap
}

// change is one item of an update batch.
type change struct {
	T     string `json:"t"`
	ID    string `json:"id,omitempty"`
	Value any    `json:"v,omitempty"`
}

// render turns changed keys into the batch a client is sent.
func (s *Server) render(keys []string) []change {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	rank := func(k string) int {
		switch {
		case k == keyCurrent:
			return 0
		case strings.HasPrefix(k, keyRollout):
			return 1
		case strings.HasPrefix(k, keyRSite):
			return 2
		}
		return 3
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var out []change
	current := slices.Contains(keys, keyCurrent)
	for _, k := range keys {
		switch {
		case k == keyCurrent:
			out = append(out, change{T: "current", ID: s.st.current, Value: s.st.rolloutSites(s.st.current)})
		case strings.HasPrefix(k, keyRollout):
			id := strings.TrimPrefix(k, keyRollout)
			if r, ok := s.st.rollouts[id]; ok && r.header.ID != "" {
				out = append(out, change{T: "rollout", ID: id, Value: header(r.header, now)})
			} else {
				out = append(out, change{T: "rollout_gone", ID: id})
			}
		case strings.HasPrefix(k, keyRSite):
			id, site, _ := strings.Cut(strings.TrimPrefix(k, keyRSite), "/")
			if id != s.st.current || current {
				continue // only the current rollout's sites are live; a "current" change sent them all
			}
			if r, ok := s.st.rollouts[id]; ok {
				if ss, ok := r.sites[site]; ok {
					out = append(out, change{T: "rsite", ID: id, Value: ss})
				}
			}
		case strings.HasPrefix(k, keySite):
			id := strings.TrimPrefix(k, keySite)
			if v, ok := s.st.siteView(id, now); ok {
				out = append(out, change{T: "site", ID: id, Value: v})
			} else {
				out = append(out, change{T: "site_gone", ID: id})
			}
		}
	}
	return out
}

// Ready is closed once the buckets' current entries were read.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Handler returns the page's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.snapshot()) })
	mux.HandleFunc("GET /api/site/{site}", s.site)
	mux.HandleFunc("POST /api/rollout/{verb}", s.action)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	return s.secure(mux)
}

const (
	cookieName   = "pbxfleet_token"
	actionHeader = "X-Pbxfleet-Action"
)

// secure adds the headers every answer carries, refuses cross-site and
// read-only POSTs, and asks for the token when one is set.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.Method == http.MethodPost && r.URL.Path != "/login" {
			if s.cfg.ReadOnly {
				http.Error(w, "read-only: this page cannot steer rollouts", http.StatusForbidden)
				return
			}
			if r.Header.Get(actionHeader) == "" || !sameOrigin(r) {
				http.Error(w, "refused: not sent by the page", http.StatusForbidden)
				return
			}
		}
		if s.cfg.Token != "" && !s.authorized(r) && r.URL.Path != "/login" && !strings.HasPrefix(r.URL.Path, "/assets/") {
			if r.Method == http.MethodGet && r.URL.Path == "/" {
				serveAsset(w, "login.html", http.StatusUnauthorized)
				return
			}
			http.Error(w, "unauthorized: the operator token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin says an Origin header, when a browser sent one, names this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	o = strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://")
	return o == r.Host
}

func (s *Server) authorized(r *http.Request) bool {
	got := ""
	if c, err := r.Cookie(cookieName); err == nil {
		got = c.Value
	}
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = a
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := r.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.Token)) != 1 {
		time.Sleep(500 * time.Millisecond) // slows guessing
		serveAsset(w, "login.html", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.cfg.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func serveAsset(w http.ResponseWriter, name string, code int) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	serveAsset(w, "index.html", http.StatusOK)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) site(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	d, ok := s.st.siteDetail(r.PathValue("site"), time.Now())
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "no such site", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// action calls the orchestrator service's verb, as `pbxfleet <verb>` does.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	verb := r.PathValue("verb")
	switch verb {
	case events.RolloutPause, events.RolloutResume, events.RolloutAbort, events.RolloutRollback:
	default:
		http.Error(w, "unknown verb "+verb, http.StatusNotFound)
		return
	}
	var req orchestrator.IDRequest
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var out orchestrator.Rollout
	err := orchestrator.Request(r.Context(), s.cfg.NC, verb, req, &out)
	var se *orchestrator.ServiceError
	switch {
	case errors.As(err, &se):
		code := http.StatusInternalServerError
		switch se.Code {
		case orchestrator.CodeBadRequest:
			code = http.StatusBadRequest
		case orchestrator.CodeNotFound:
			code = http.StatusNotFound
		case orchestrator.CodeConflict:
			code = http.StatusConflict
		}
		writeJSON(w, code, map[string]string{"error": se.Text})
		return
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("web: rollout verb", "verb", verb, "rollout", out.ID, "phase", out.Phase, "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"id": out.ID, "phase": out.Phase})
}

// events streams the state: a snapshot, then batches of changes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	c := &client{dirty: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	s.cmu.Lock()
	s.clients[c] = struct{}{}
	s.cmu.Unlock()
	defer func() {
		s.cmu.Lock()
		delete(s.clients, c)
		s.cmu.Unlock()
	}()
	select {
	case <-s.ready:
	case <-r.Context().Done():
		return
	}
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send("snapshot", s.snapshot()); err != nil {
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var last time.Time
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-c.wake:
			if wait.Sleep(r.Context(), s.cfg.MinInterval-time.Since(last)) != nil {
				return
			}
			c.mu.Lock()
			keys := make([]string, 0, len(c.dirty))
			for k := range c.dirty {
				keys = append(keys, k)
			}
			resync := c.resync
			c.dirty, c.resync = map[string]struct{}{}, false
			c.mu.Unlock()
			var err error
			if resync {
				err = send("snapshot", s.snapshot())
			} else if batch := s.render(keys); len(batch) > 0 {
				err = send("batch", batch)
			}
			if err != nil {
				return
			}
			last = time.Now()
		}
	}
}

const (
	writeTimeout = 10 * time.Second
	pingEvery    = 20 * time.Second
)

// Listen binds addr; unless allowRemote it must be a loopback address, so the
// page is not open to the network by accident.
func Listen(addr string, allowRemote bool) (net.Listener, error) {
	if err := CheckAddress(addr, allowRemote); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}

// CheckAddress returns an error when addr is not host:port, or (unless
// allowRemote) not a loopback address.
func CheckAddress(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if !allowRemote && !isLoopback(host) {
		return fmt.Errorf("%q is not a loopback address: the page is loopback-only unless allowed (serve --http-allow-remote, web --allow-remote)", addr)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves the page on ln until ctx ends, then shuts down; the event
// streams end with ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-done
	return nil
}

// URL returns the page's address for a listener.
func URL(ln net.Listener) string { return "http://" + ln.Addr().String() + "/" }

// LoadOrCreateToken reads the operator token from path, or creates one (32
// random bytes, hex) there, readable by its owner only.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("token %s: shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}
