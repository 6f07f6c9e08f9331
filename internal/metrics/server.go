package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where a Server serves the metrics.
const Path = "/metrics"

// shutdownGrace bounds how long Run waits for scrapes in progress once its
// context ends.
const shutdownGrace = 5 * time.Second

// Server serves one registry in the Prometheus text format at Path. Create it
// with Listen, then call Run.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// Listen binds addr ("host:port"; port 0 picks a free one) and returns a server
// for reg, ready to Run. It returns an error naming addr when the address does
// not parse or cannot be bound. log may be nil.
func Listen(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	if reg == nil {
		return nil, errors.New("metrics endpoint: no registry")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("metrics endpoint %q: want host:port: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint %q: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A collector that fails still leaves the others readable.
		ErrorHandling: promhttp.ContinueOnError,
		// promhttp_metric_handler_errors_total goes to the same registry.
		Registry: reg,
	}))
	return &Server{
		ln:  ln,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		log: log,
	}, nil
}

// Addr returns the bound address, e.g. 127.0.0.1:9310.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the metrics URL, e.g. http://127.0.0.1:9310/metrics.
func (s *Server) URL() string { return "http://" + s.Addr() + Path }

// Run serves until ctx ends, then shuts the server down (waiting up to 5 s for
// scrapes in progress) and returns nil. It returns an error when serving fails
// for another reason. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("serving metrics", "url", s.URL())
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", s.Addr(), err)
	}
	return nil
}
