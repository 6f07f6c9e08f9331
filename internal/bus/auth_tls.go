package bus

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// serverTLSTimeout bounds a client's TLS handshake, in seconds (the server's
// default of half a second is short for agents across a WAN).
const serverTLSTimeout = 2

// ServerTLS returns an EmbeddedConfig.Options hook that makes the embedded
// server require TLS with the PEM certificate cert and key. ca, when set, is the
// CA that signs client certificates; verifyClients (which needs ca) makes the
// server require and verify a client certificate (mutual TLS). Clients connect
// with ConnConfig.TLSCA (and TLSCert/TLSKey for mutual TLS). It returns an error
// wrapping ErrTLSConfig when a file cannot be used; nothing is read later.
func ServerTLS(cert, key, ca string, verifyClients bool) (func(*server.Options), error) {
	if cert == "" || key == "" {
		return nil, fmt.Errorf("server tls: %w: the server certificate and key are both required", ErrTLSConfig)
	}
	if verifyClients && ca == "" {
		return nil, fmt.Errorf("server tls: %w: verifying clients needs the CA that signs their certificates", ErrTLSConfig)
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: cert, KeyFile: key, CaFile: ca, Verify: verifyClients, Timeout: serverTLSTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("server tls %s: %w: %v", cert, ErrTLSConfig, err)
	}
	return func(o *server.Options) {
		o.TLS = true
		o.TLSVerify = verifyClients
		o.TLSTimeout = serverTLSTimeout
		o.TLSConfig = tc
	}, nil
}

// JoinOptions returns one EmbeddedConfig.Options hook that applies hooks in order
// (nil hooks are skipped), e.g. the credentials' authorization and ServerTLS.
func JoinOptions(hooks ...func(*server.Options)) func(*server.Options) {
	return func(o *server.Options) {
		for _, h := range hooks {
			if h != nil {
				h(o)
			}
		}
	}
}
