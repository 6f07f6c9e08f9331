package bus

import "errors"

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNoDataDir means an embedded server was asked for without a JetStream store directory.
	ErrNoDataDir = errors.New("embedded nats needs a data directory")
	// ErrDataDirLocked means another embedded server (another `pbxfleet serve`)
	// holds the JetStream store directory.
	ErrDataDirLocked = errors.New("data directory in use")
	// ErrNotReady means the embedded server did not accept connections in time.
	ErrNotReady = errors.New("nats server not ready")
	// ErrBadURL means a NATS URL list holds an entry nats.go cannot dial as
	// written (empty, no host, not nats/tls/ws/wss).
	ErrBadURL = errors.New("invalid nats url")
	// ErrTLSConfig means the TLS files given could not be used.
	ErrTLSConfig = errors.New("invalid tls configuration")
)
