package opcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/spf13/pflag"
)

// NATSFlags are the connection flags every command that talks to NATS shares.
type NATSFlags struct {
	URL     string
	Creds   string
	NKey    string
	TLSCA   string
	TLSCert string
	TLSKey  string
	Timeout time.Duration
}

// Register adds the flags to fs.
func (f *NATSFlags) Register(fs *pflag.FlagSet) {
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&f.URL, "nats-url", url, "NATS server URL(s), comma separated (default $NATS_URL or the local `pbxfleet serve`)")
	fs.StringVar(&f.Creds, "creds", "", "NATS credentials file (JWT + seed)")
	fs.StringVar(&f.NKey, "nkey", "", "NATS nkey seed file")
	fs.StringVar(&f.TLSCA, "tls-ca", "", "CA certificate that signs the NATS server's certificate")
	fs.StringVar(&f.TLSCert, "tls-cert", "", "client certificate for NATS")
	fs.StringVar(&f.TLSKey, "tls-key", "", "client key for NATS")
	fs.DurationVar(&f.Timeout, "connect-timeout", 5*time.Second, "how long to try to reach NATS")
}

// Config is the connection the flags describe, named name.
func (f *NATSFlags) Config(name string) natsclient.Config {
	return natsclient.Config{
		URL: f.URL, Name: name, CredsFile: f.Creds, NKeySeedFile: f.NKey,
		TLSCA: f.TLSCA, TLSCert: f.TLSCert, TLSKey: f.TLSKey,
	}
}

// Connect dials NATS and returns the connection and its JetStream context.
func (f *NATSFlags) Connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	cctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	nc, err := natsclient.Connect(cctx, f.Config(name))
	if errors.Is(err, natsclient.ErrBadURL) {
		return nil, nil, Invalid(fmt.Errorf("--nats-url: %w", err))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is `pbxfleet serve` running, or pass --nats-url)", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}
