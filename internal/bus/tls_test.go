package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/bus/bustest"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and a client certificate,
// all made in the test, as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA                                          string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caPEM := newCA(t, "pbxfleet test CA")
	_, _, otherPEM := newCA(t, "someone else's CA")
	p := testPKI{ca: filepath.Join(dir, "ca.pem"), otherCA: filepath.Join(dir, "other-ca.pem")}
	require.NoError(t, os.WriteFile(p.ca, caPEM, 0o644))
	require.NoError(t, os.WriteFile(p.otherCA, otherPEM, 0o644))
	p.serverCert, p.serverKey = newLeaf(t, dir, "server", caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pbxfleet"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.clientCert, p.clientKey = newLeaf(t, dir, "client", caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "bsas-1.pbx"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newLeaf(t *testing.T, dir, name string, caKey *ecdsa.PrivateKey, ca *x509.Certificate, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

func startTLS(t *testing.T, hook func(*server.Options)) *bus.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: t.TempDir(), Port: -1, Options: hook})
	require.NoError(t, err)
	t.Cleanup(emb.Shutdown)
	return emb
}

func TestServerTLS(t *testing.T) {
	p := newTestPKI(t)
	rogueKey, rogueCA, _ := newCA(t, "rogue CA")
	rogueCert, rogueCertKey := newLeaf(t, t.TempDir(), "rogue", rogueKey, rogueCA, &x509.Certificate{
		Subject: pkix.Name{CommonName: "rogue"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	// Go's TLS client withholds a certificate that no CA the server names
	// signed, so the rogue client is refused as having none. How a refused
	// client certificate surfaces depends on timing (TLS 1.3 verifies it after
	// the client's handshake ends): "tls: certificate required" or a closed
	// connection, both tls errors.
	tests := []struct {
		name          string
		verifyClients bool
		client        natsclient.Config
		wantErr       string // part of the refusal; empty: connects
	}{
		{name: "client trusts the CA", client: natsclient.Config{TLSCA: p.ca}},
		{name: "client without the CA is refused", client: natsclient.Config{}, wantErr: "x509: certificate signed by unknown authority"},
		{name: "client trusting another CA is refused", client: natsclient.Config{TLSCA: p.otherCA}, wantErr: "x509: certificate signed by unknown authority"},
		{name: "mutual tls with a client certificate", verifyClients: true,
			client: natsclient.Config{TLSCA: p.ca, TLSCert: p.clientCert, TLSKey: p.clientKey}},
		{name: "mutual tls without a client certificate is refused", verifyClients: true,
			client: natsclient.Config{TLSCA: p.ca}, wantErr: "tls"},
		{name: "mutual tls with a certificate another CA signed is refused", verifyClients: true,
			client: natsclient.Config{TLSCA: p.ca, TLSCert: rogueCert, TLSKey: rogueCertKey}, wantErr: "tls"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook, err := bus.ServerTLS(p.serverCert, p.serverKey, p.ca, tt.verifyClients)
			require.NoError(t, err)
			emb := startTLS(t, hook)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tt.client.URL = emb.ClientURL()
			nc, err := natsclient.Connect(ctx, tt.client)
			if tt.wantErr != "" {
				if nc != nil {
					nc.Close()
				}
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			defer nc.Close()
			assert.True(t, nc.TLSRequired())
			require.NoError(t, nc.Publish("pbxfleet.tls.hello", nil))
			require.NoError(t, nc.Flush())
			state, err := nc.TLSConnectionState()
			require.NoError(t, err)
			assert.True(t, state.HandshakeComplete)
		})
	}
}

// TestServerTLSWithAuthorization joins the TLS hook with nkey authorization, as
// `pbxfleet serve --auth DIR` with TLS does.
func TestServerTLSWithAuthorization(t *testing.T) {
	p := newTestPKI(t)
	tlsHook, err := bus.ServerTLS(p.serverCert, p.serverKey, "", false)
	require.NoError(t, err)
	pub, seedFile := bustest.NewUserKey(t, t.TempDir(), "operator")
	emb := startTLS(t, bus.JoinOptions(tlsHook, nil, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub, Permissions: bus.OperatorPermissions()}}
	}))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := natsclient.Connect(ctx, natsclient.Config{URL: emb.ClientURL(), TLSCA: p.ca, NKeySeedFile: seedFile})
	require.NoError(t, err)
	nc.Close()
	_, err = natsclient.Connect(ctx, natsclient.Config{URL: emb.ClientURL(), TLSCA: p.ca})
	require.ErrorContains(t, err, "Authorization Violation")
}

func TestServerTLSRejectsBadFiles(t *testing.T) {
	p := newTestPKI(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name          string
		cert, key, ca string
		verify        bool
	}{
		{name: "no key", cert: p.serverCert},
		{name: "no certificate", key: p.serverKey},
		{name: "verify clients without a CA", cert: p.serverCert, key: p.serverKey, verify: true},
		{name: "missing certificate file", cert: missing, key: p.serverKey},
		{name: "key of another certificate", cert: p.serverCert, key: p.clientKey},
		{name: "missing CA file", cert: p.serverCert, key: p.serverKey, ca: missing},
		{name: "CA file without a certificate", cert: p.serverCert, key: p.serverKey, ca: p.serverKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bus.ServerTLS(tt.cert, tt.key, tt.ca, tt.verify)
			require.ErrorIs(t, err, bus.ErrTLSConfig)
		})
	}
}
