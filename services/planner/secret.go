package planner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// Secret reference prefixes (Settings.Secret).
const (
	secretEnvPrefix  = "env:"
	secretFilePrefix = "file:"
)

// minSecretLen is the shortest secret accepted without Options.AcceptWeakSecrets.
const minSecretLen = 12

// maxSecretFileBytes bounds a file: secret; a secret is at most 128 characters.
const maxSecretFileBytes = 4 << 10

// envNameRE is a portable environment variable name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// wellKnown reports whether v is a secret a scanner tries first (compared
// case-insensitively): the seed's own (omnileads, issabelOML), the products'
// default passwords and the usual guesses. A switch, not a package-level list, so
// the package holds no mutable state.
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

// secretResult is a resolved secret reference; err never contains the value.
type secretResult struct {
	value string
	// source is what the plan may show: env:NAME, file:PATH or literal.
	source string
	err    error
	// weak says why the secret is weak, "" when it is not.
	weak string
	// reported is set once the problems of an inherited reference were reported,
	// so a defaults.secret used by many sites is reported once.
	reported bool
}

// resolveSecret reads the secret a reference points at. Errors name the
// reference (an environment variable name or a path), never the value.
func resolveSecret(ref, baseDir string, opts Options) *secretResult {
	r := &secretResult{}
	switch {
	case strings.HasPrefix(ref, secretEnvPrefix):
		name := strings.TrimPrefix(ref, secretEnvPrefix)
		r.source = secretEnvPrefix + name
		if !envNameRE.MatchString(name) {
			r.err = fmt.Errorf("%q is not an environment variable name", clip(name))
			return r
		}
		v, ok := opts.lookupEnv(name)
		if !ok {
			r.err = fmt.Errorf("environment variable %s is not set", name)
			return r
		}
		r.value = v
	case strings.HasPrefix(ref, secretFilePrefix):
		p := strings.TrimPrefix(ref, secretFilePrefix)
		r.source = secretFilePrefix + p
		if p == "" {
			r.err = errors.New("file: needs a path")
			return r
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		v, err := readSecretFile(p)
		if err != nil {
			r.err = err
			return r
		}
		r.value = v
	default:
		r.source = "literal"
		r.value = ref
	}
	if r.value == "" {
		r.err = fmt.Errorf("the secret from %s is empty", r.source)
		return r
	}
	if err := asterisk.CheckSecret(r.value); err != nil {
		r.err = fmt.Errorf("the secret from %s: %w", r.source, err)
		return r
	}
	r.weak = weakness(r.value)
	return r
}

// readSecretFile reads a secret file, dropping one trailing newline (what an
// editor or echo adds); any other whitespace is left for CheckSecret to refuse.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFileBytes {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretFileBytes)
	}
	s := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// weakness returns why a secret is weak, or "".
func weakness(v string) string {
	if wellKnown(v) {
		return "a well-known password, among the first a SIP scanner tries"
	}
	if len(v) < minSecretLen {
		return fmt.Sprintf("shorter than %d characters", minSecretLen)
	}
	if strings.Count(v, v[:1]) == len(v) {
		return "one character repeated"
	}
	return ""
}
