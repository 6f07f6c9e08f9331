package node

import "errors"

// Errors of the agent runtime, matched with errors.Is.
var (
	// ErrNoCommand means the CLI argv prefix is empty.
	ErrNoCommand = errors.New("no CLI command configured")
	// ErrAsteriskDown means Asterisk is not running (`asterisk -rx` could not connect).
	ErrAsteriskDown = errors.New("asterisk is not running")
	// ErrUnexpectedReply means a CLI command printed something other than its success text.
	ErrUnexpectedReply = errors.New("unexpected CLI reply")
	// ErrVerifyFailed means a verification check failed.
	ErrVerifyFailed = errors.New("verification failed")
	// ErrStaleRevision means a desired state older than the one applied was ignored.
	ErrStaleRevision = errors.New("stale revision")
)
