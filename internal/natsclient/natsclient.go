// Package natsclient connects pbxfleet's programs to NATS: URLs checked and
// redacted, credentials, TLS, and a node's own inbox prefix. It is all a
// client needs; the embedded server and the permissions are internal/bus.
package natsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Config says how to reach NATS. The zero value (plus URL) is a plain
// connection that reconnects forever.
type Config struct {
	// URL is one or more comma-separated nats:// or tls:// URLs.
	URL string
	// Name identifies the connection in server monitoring (e.g. "pbx-node bsas-1.pbx").
	Name string
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeySeedFile is an nkey seed file for user-nkey authentication.
	NKeySeedFile string
	// User and Password authenticate with a user/password pair.
	User, Password string
	// TLSCA verifies the server certificate; TLSCert and TLSKey present a client certificate.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces the _INBOX prefix of replies; a node uses
	// InboxPrefix(site, role), the only inbox its credentials may read.
	InboxPrefix string
	// RetryOnFailedConnect lets agents start before the server is up: Connect
	// returns at once and the client keeps trying in the background.
	RetryOnFailedConnect bool
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Connect dials NATS with cfg. It returns an error naming the URL when the server
// cannot be reached (unless RetryOnFailedConnect) or a credentials/TLS file is bad.
func Connect(ctx context.Context, cfg Config) (*nats.Conn, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	if cfg.RetryOnFailedConnect {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(dl)))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("connect nats: nkey seed %s: %w", cfg.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCA != "" || cfg.TLSCert != "" {
		tc, err := ClientTLS(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("connect nats: %w", err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	url := cfg.URL
	if url == "" {
		url = nats.DefaultURL
	}
	if err := CheckURLs(url); err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", RedactURLs(url), err)
	}
	return nc, nil
}

// natsSchemes are the URL schemes nats.go dials.
var natsSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// CheckURLs returns nil when list is one or more comma-separated NATS URLs,
// each with a scheme nats.go dials (nats, tls, ws, wss) and a host. It returns
// an error wrapping ErrBadURL for an empty entry, another scheme (http://,
// file:///etc/passwd), no scheme, or no host: nats.go would otherwise drop or
// rewrite such an entry and dial 127.0.0.1:4222 instead. Errors show the URL
// without its password.
func CheckURLs(list string) error {
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return fmt.Errorf("%w: entry %d of %q is empty", ErrBadURL, i+1, RedactURLs(list))
		}
		u, err := neturl.Parse(entry)
		if err != nil {
			return fmt.Errorf("%w: entry %d (%q) does not parse", ErrBadURL, i+1, RedactURLs(entry))
		}
		if !natsSchemes[u.Scheme] {
			return fmt.Errorf("%w: %q: the scheme must be nats://, tls://, ws:// or wss://", ErrBadURL, RedactURLs(entry))
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%w: %q names no host", ErrBadURL, RedactURLs(entry))
		}
	}
	return nil
}

// RedactURLs returns list (comma-separated URLs) with every password replaced
// by xxxxx, for banners, logs and errors. An entry that does not parse is
// replaced whole when it holds an @ (it may hold a password).
func RedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		switch {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "<unparsable URL>"
		case err == nil && u.User != nil:
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// ClientTLS builds a client TLS config from PEM files: ca verifies the server,
// cert+key (both or neither) are presented to it.
func ClientTLS(ca, cert, key string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%w: read ca %s: %v", ErrTLSConfig, ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no certificate in ca %s", ErrTLSConfig, ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%w: client certificate and key must be given together", ErrTLSConfig)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: load client certificate %s: %v", ErrTLSConfig, cert, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// DefaultInbox is the inbox prefix of clients that set none (nats.InboxPrefix
// without its dot).
const DefaultInbox = "_INBOX"

// InboxPrefix returns the inbox prefix of a node's connection,
// _INBOX_<site>_<role> (one subject token: every character outside [A-Za-z0-9_-]
// becomes '_'). A node is allowed to subscribe only under its own prefix, so it
// cannot read the replies meant for any other client; connect it with
// Config.InboxPrefix set to this value. It does not validate.
func InboxPrefix(site, role string) string {
	return DefaultInbox + "_" + token(site) + "_" + token(role)
}

// token makes s a single subject token of [A-Za-z0-9_-].
func token(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// Errors returned by this package, matched with errors.Is.
var (
	// ErrBadURL means a NATS URL list holds an entry nats.go cannot dial as
	// given.
	ErrBadURL = errors.New("invalid nats url")
	// ErrTLSConfig means the TLS files given could not be used.
	ErrTLSConfig = errors.New("invalid tls configuration")
)
