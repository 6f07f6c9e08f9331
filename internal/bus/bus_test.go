package bus_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

func TestProvisionIsIdempotent(t *testing.T) {
	srv := natstest.Start(t) // provisions once
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, bus.Provision(ctx, srv.JS, bus.ProvisionConfig{}))

	for _, name := range []string{events.BucketDesired, events.BucketStatus, events.BucketRollouts} {
		kv, err := srv.JS.KeyValue(ctx, name)
		require.NoError(t, err, name)
		st, err := kv.Status(ctx)
		require.NoError(t, err)
		require.Equal(t, name, st.Bucket())
	}
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, st.History())

	stream, err := srv.JS.Stream(ctx, events.StreamResults)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"pbxfleet.result.>"}, info.Config.Subjects)
	require.Equal(t, jetstream.FileStorage, info.Config.Storage)
}

func TestEmbeddedSurvivesRestartOnSameStore(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.NoError(t, err)
	nc, err := natsclient.Connect(ctx, natsclient.Config{URL: emb.ClientURL()})
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, bus.Provision(ctx, js, bus.ProvisionConfig{}))
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "bsas-1.pbx", "v1")
	require.NoError(t, err)
	nc.Close()
	emb.Shutdown()

	emb2, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.NoError(t, err)
	defer emb2.Shutdown()
	nc2, err := natsclient.Connect(ctx, natsclient.Config{URL: emb2.ClientURL()})
	require.NoError(t, err)
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	require.NoError(t, err)
	kv2, err := js2.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	e, err := kv2.Get(ctx, "bsas-1.pbx")
	require.NoError(t, err)
	require.Equal(t, "v1", string(e.Value()))
}

// TestEmbeddedMaxPayload: the embedded server is a stock one: 1 MiB messages.
func TestEmbeddedMaxPayload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: t.TempDir(), Port: -1})
	require.NoError(t, err)
	defer emb.Shutdown()
	nc, err := natsclient.Connect(ctx, natsclient.Config{URL: emb.ClientURL()})
	require.NoError(t, err)
	defer nc.Close()
	require.Equal(t, int64(bus.MaxPayload), nc.MaxPayload())
	require.Equal(t, int64(1<<20), nc.MaxPayload())
}

func TestStartEmbeddedNeedsDataDir(t *testing.T) {
	_, err := bus.StartEmbedded(context.Background(), bus.EmbeddedConfig{})
	require.ErrorIs(t, err, bus.ErrNoDataDir)
}

func TestClientTLSRejectsHalfPair(t *testing.T) {
	_, err := natsclient.ClientTLS("", "cert.pem", "")
	require.ErrorIs(t, err, bus.ErrTLSConfig)
}

// TestDataDirIsLocked: two embedded servers never share a store: the second
// is refused with the holder's pid, whether the store is held by this process
// or by another one; the lock goes with the holder.
func TestDataDirIsLocked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	first, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.NoError(t, err)
	_, err = bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.ErrorIs(t, err, bus.ErrDataDirLocked)
	require.ErrorContains(t, err, "held by pid "+strconv.Itoa(os.Getpid()))
	first.Shutdown()

	// Another process (flock(1)) holds it: refused with that process's pid.
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	lock := filepath.Join(dir, bus.LockFile)
	holder := exec.Command(flock, "--exclusive", "--no-fork", lock, "sh", "-c", `echo $$ > "$0"; exec sleep 30`, lock)
	require.NoError(t, holder.Start())
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	var pid string
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(lock)
		pid = strings.TrimSpace(string(b))
		return pid != "" && pid != strconv.Itoa(os.Getpid())
	}, 5*time.Second, 20*time.Millisecond)
	_, err = bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.ErrorIs(t, err, bus.ErrDataDirLocked)
	require.ErrorContains(t, err, "held by pid "+pid)
	require.NoError(t, holder.Process.Kill())
	_ = holder.Wait()
	again, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Port: -1})
	require.NoError(t, err, "the kernel released the dead holder's lock")
	again.Shutdown()
}

// TestCheckURLs: only nats, tls, ws and wss URLs with a host pass; nats.go
// would otherwise drop or rewrite the others and dial 127.0.0.1:4222. No error
// holds a password.
func TestCheckURLs(t *testing.T) {
	tests := []struct {
		list string
		ok   bool
	}{
		{"nats://127.0.0.1:4222", true},
		{"tls://nats.example.net:4222", true},
		{"nats://hub-1:4222,nats://hub-2:4222", true},
		{"nats://hub-1:4222, nats://hub-2:4222", true},
		{"nats://op:Sup3r-S3cret@hub-1:4222", true},
		{"wss://hub-1:443", true},
		{"http://127.0.0.1:4222", false},
		{"file:///etc/passwd", false},
		{"nats://hub-1:4222,,junk", false},
		{"nats://hub-1:4222,", false},
		{"", false},
		{"hub-1:4222", false},
		{"nats://", false},
		{"nats://op:Sup3r-S3cret@:4222", false},
		{"http://op:Sup3r-S3cret@hub-1:4222", false},
		{"nats://op:Sup3r-S3cret@hub-1:4222,,x", false},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			err := natsclient.CheckURLs(tt.list)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, natsclient.ErrBadURL)
			require.NotContains(t, err.Error(), "Sup3r-S3cret")
		})
	}
}

// TestConnectErrorsHideThePassword: a connect that fails names the URL without
// its password.
func TestConnectErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, url := range []string{"nats://op:Sup3r-S3cret@127.0.0.1:1", "nats://127.0.0.1:1,nats://op:Sup3r-S3cret@127.0.0.1:2", "http://op:Sup3r-S3cret@127.0.0.1:1"} {
		nc, err := natsclient.Connect(ctx, natsclient.Config{URL: url})
		if nc != nil {
			nc.Close()
		}
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "Sup3r-S3cret", url)
	}
	assert.Equal(t, "nats://op:xxxxx@hub-1:4222,nats://hub-2:4222", natsclient.RedactURLs("nats://op:Sup3r-S3cret@hub-1:4222,nats://hub-2:4222"))
}
