package bus

import (
	"errors"

	"github.com/pbxfleet/pbxfleet/internal/natsclient"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNoDataDir means an embedded server was asked for without a JetStream store directory.
	ErrNoDataDir = errors.New("embedded nats needs a data directory")
	// ErrDataDirLocked means another embedded server (another `pbxfleet serve`)
	// holds the JetStream store directory.
	ErrDataDirLocked = errors.New("data directory in use")
	// ErrNotReady means the embedded server did not accept connections in time.
	ErrNotReady = errors.New("nats server not ready")
	// ErrTLSConfig means the TLS files given could not be used (the server's
	// own; the client's are natsclient.ErrTLSConfig).
	ErrTLSConfig = natsclient.ErrTLSConfig
)
