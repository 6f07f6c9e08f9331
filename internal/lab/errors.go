package lab

import "errors"

// Sentinel errors of the lab. Every error returned by this package wraps one of
// these (or an I/O error) and names the operation, the host and the file.
var (
	// ErrConfSyntax is wrapped by every .conf parse failure: a line the Asterisk
	// parser would reject, which makes Asterisk reject the whole file.
	ErrConfSyntax = errors.New("asterisk config syntax error")
	// ErrIncludeMissing is wrapped when an #include target does not exist; Asterisk
	// rejects the including file (docs/asterisk.md#where-the-files-go). #tryinclude never fails this way.
	ErrIncludeMissing = errors.New("#include target not found")
	// ErrIncludeDepth is wrapped when includes nest too deep (an include loop).
	ErrIncludeDepth = errors.New("#include nesting too deep")
	// ErrInvalidConfig is wrapped by Config.Validate failures.
	ErrInvalidConfig = errors.New("invalid lab host config")
	// ErrAddressInUse is wrapped when two lab hosts claim the same UDP address:port in
	// one Network (Instant mode has no sockets to make the kernel say so).
	ErrAddressInUse = errors.New("address already in use")
	// ErrNotStarted is wrapped when an operation needs a started host.
	ErrNotStarted = errors.New("lab host not started")
	// ErrClosed is wrapped when the host was closed.
	ErrClosed = errors.New("lab host closed")
)
