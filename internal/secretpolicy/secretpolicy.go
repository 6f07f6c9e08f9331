// Package secretpolicy is the one trunk-secret policy of pbxfleet, enforced
// where a secret enters (planner validation of a fleet file), where a rollout
// is accepted (the orchestrator's Plan.Validate, whatever sent
// pbxfleet.rollout.start) and where it is written (the node agent, before any
// file): a secret must not be key material (an nkey seed or public key, a curve
// key: what a file: reference pointed at the credentials dir would read), and
// must not be weak (well known, short, one character repeated) unless a lab
// accepts weak secrets. A leaf package: it imports nothing of pbxfleet, and no
// error it returns contains the secret.
package secretpolicy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nkeys"
)

// MinLen is the shortest secret accepted unless weak secrets are.
const MinLen = 12

// Errors of Check, matched with errors.Is.
var (
	// ErrKeyMaterial means the value is an nkey or curve key (seed or public),
	// never a trunk secret; no option accepts it.
	ErrKeyMaterial = errors.New("key material, not a trunk secret")
	// ErrWeak means the value is well known, short or one repeated character.
	ErrWeak = errors.New("weak secret")
)

// Options relax the policy for labs.
type Options struct {
	// AcceptWeak lets a weak secret through (labs and demos); key material is
	// refused all the same.
	AcceptWeak bool
}

// Check returns nil when v may be a trunk secret, else an error wrapping
// ErrKeyMaterial or ErrWeak that says why without v.
func Check(v string, opts Options) error {
	if what := KeyMaterial(v); what != "" {
		return fmt.Errorf("%w: it is %s (a file: reference into a credentials dir?)", ErrKeyMaterial, what)
	}
	if why := Weakness(v); why != "" && !opts.AcceptWeak {
		return fmt.Errorf("%w: %s; use %d or more random characters", ErrWeak, why, MinLen)
	}
	return nil
}

// nkeyShape is the shape of an encoded nkey: a seed is S, a type prefix and
// 56 base32 characters (58 in all); a public key is a type prefix and 55 (56
// in all). Keys whose checksum is off still match.
var (
	seedShape   = regexp.MustCompile(`^S[OACNUXP][A-Z2-7]{56}$`)
	publicShape = regexp.MustCompile(`^[OACNUXP][A-Z2-7]{55}$`)
)

// KeyMaterial says what key v is ("an nkey seed", "an nkey public key"), or ""
// when it is none. It decodes with nkeys (a decorated seed, as in a .creds
// file, counts) and also refuses anything shaped like one.
func KeyMaterial(v string) string {
	s := strings.TrimSpace(v)
	if s == "" {
		return ""
	}
	if kp, err := nkeys.ParseDecoratedNKey([]byte(s)); err == nil {
		if _, err := kp.Seed(); err == nil {
			return "an nkey seed"
		}
	}
	if _, err := nkeys.FromSeed([]byte(s)); err == nil {
		return "an nkey seed"
	}
	if seedShape.MatchString(s) {
		return "shaped like an nkey seed"
	}
	if nkeys.IsValidPublicKey(s) || publicShape.MatchString(s) {
		return "an nkey public key"
	}
	return ""
}

// Weakness says why v is weak ("" when it is not): a secret a SIP scanner tries
// first (the manual's own, the products' defaults, the usual guesses, compared
// without regard to case), shorter than MinLen, or one character repeated.
func Weakness(v string) string {
	if wellKnown(v) {
		return "a well-known password, among the first a SIP scanner tries"
	}
	if len(v) < MinLen {
		return fmt.Sprintf("shorter than %d characters", MinLen)
	}
	if strings.Count(v, v[:1]) == len(v) {
		return "one character repeated"
	}
	return ""
}

// wellKnown reports whether v is a secret a scanner tries first. A switch, not
// a package-level list, so the package holds no mutable state.
func wellKnown(v string) bool {
	switch strings.ToLower(v) {
	case "omnileads", "issabeloml", "issabel", "issabel123", "admin", "administrator",
		"password", "passw0rd", "secret", "changeme", "default", "asterisk", "freepbx",
		"elastix", "elastix.2oo7", "sip", "pbx", "trunk", "test", "qwerty", "letmein",
		"1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890",
		"000000", "111111", "abc123":
		return true
	}
	return false
}
