package creds

import "errors"

// Errors returned by this package, matched with errors.Is.
var (
	// ErrInvalidSet means auth.json is malformed: an unknown version, a bad
	// public key, a bad node id or a key used twice.
	ErrInvalidSet = errors.New("invalid credentials set")
	// ErrWrongKeyKind means an existing seed file holds another kind of key than
	// its name says (e.g. a curve seed in a .nk file); it is never overwritten.
	ErrWrongKeyKind = errors.New("seed file holds the wrong kind of key")
)
