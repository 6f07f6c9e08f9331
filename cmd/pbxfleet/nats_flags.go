package main

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

// natsFlags are the connection flags every command that talks to NATS shares.
type natsFlags struct {
	url     string
	creds   string
	nkey    string
	tlsCA   string
	tlsCert string
	tlsKey  string
	timeout time.Duration
}

func (f *natsFlags) register(fs *pflag.FlagSet) {
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&f.url, "nats-url", url, "NATS server URL(s), comma separated (default $NATS_URL or the local `pbxfleet serve`)")
	fs.StringVar(&f.creds, "creds", "", "NATS credentials file (JWT + seed)")
	fs.StringVar(&f.nkey, "nkey", "", "NATS nkey seed file")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "CA certificate that signs the NATS server's certificate")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "client certificate for NATS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "client key for NATS")
	fs.DurationVar(&f.timeout, "connect-timeout", 5*time.Second, "how long to try to reach NATS")
}

func (f *natsFlags) config(name string) natsclient.Config {
	return natsclient.Config{
		URL: f.url, Name: name, CredsFile: f.creds, NKeySeedFile: f.nkey,
		TLSCA: f.tlsCA, TLSCert: f.tlsCert, TLSKey: f.tlsKey,
	}
}

// connect dials NATS and returns the connection and its JetStream context.
func (f *natsFlags) connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	nc, err := natsclient.Connect(cctx, f.config(name))
	if errors.Is(err, natsclient.ErrBadURL) {
		return nil, nil, &exitError{code: 2, err: fmt.Errorf("--nats-url: %w", err)}
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
