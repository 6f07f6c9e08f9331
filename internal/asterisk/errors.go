package asterisk

import "errors"

// Sentinel errors of the package, matched with errors.Is. ErrUnsafeValue, wrapped by
// every allow-list failure, lives next to the allow-lists in values.go.

// ErrInvalidTrunk is wrapped by every CheckTrunk problem that is not an unsafe value:
// an empty codec list, a local number declared twice, a probe number that would
// shadow a real route.
var ErrInvalidTrunk = errors.New("invalid trunk")

// ErrNotFound is wrapped when Asterisk says the object asked for does not exist:
// "Peer X not found.", "Unable to find object X.", "Database entry not found.",
// "There is no existence of ..." (docs/asterisk.md#reloads-and-cli-replies).
var ErrNotFound = errors.New("not found")

// ErrNoSuchCommand is wrapped when Asterisk answers "No such command '...'": the
// module that owns the command is not loaded, or the command does not exist on this
// version (pjsip reload on a stock 20.x, docs/asterisk.md#reloads-and-cli-replies).
var ErrNoSuchCommand = errors.New("no such command")

// ErrNotRunning is wrapped when the output says the CLI could not reach a running
// Asterisk ("Unable to connect to remote asterisk", docs/asterisk.md#reloads-and-cli-replies).
var ErrNotRunning = errors.New("asterisk not running")

// ErrUnexpectedOutput is wrapped when CLI output does not have the shape a parser
// expects: a missing header, a row it cannot read, a summary count that disagrees
// with the rows. The caller should treat the state as unknown, never as healthy.
var ErrUnexpectedOutput = errors.New("unexpected asterisk output")

// ErrReloadFailed is wrapped when a reload command printed something other than
// its known success text. The success text itself proves nothing about the
// configuration (docs/asterisk.md#reloads-and-cli-replies): verify the objects afterwards.
var ErrReloadFailed = errors.New("reload failed")
