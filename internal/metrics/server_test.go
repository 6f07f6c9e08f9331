package metrics_test

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/metrics"
	"github.com/pbxfleet/pbxfleet/internal/metrics/metricstest"
)

func TestServerServesRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	srv, err := metrics.Listen("127.0.0.1:0", reg, nil)
	require.NoError(t, err)
	metricstest.Serve(t, srv)

	got := metricstest.Scrape(t, srv.URL())
	assert.Equal(t, 3.0, got["pbxfleet_test_total"])
	assert.Contains(t, got, "go_goroutines", "Go runtime collector")
	assert.Contains(t, got, `promhttp_metric_handler_errors_total{cause="gathering"}`)
}

func TestListenRejectsBadAddresses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	tests := []struct {
		name, addr, want string
	}{
		{"no port", "127.0.0.1", "want host:port"},
		{"bad port", "127.0.0.1:http-ish", "127.0.0.1:http-ish"},
		{"in use", busy.Addr().String(), busy.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.Listen(tt.addr, metrics.NewRegistry(), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err = metrics.Listen("127.0.0.1:0", nil, nil)
	assert.Error(t, err, "no registry")
}
