package planner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
)

// Secret reference prefixes (Settings.Secret).
const (
	secretEnvPrefix  = "env:"
	secretFilePrefix = "file:"
)

// maxSecretFileBytes bounds a file: secret; a secret is at most 128 characters.
const maxSecretFileBytes = 4 << 10

// envNameRE is a portable environment variable name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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
			// Not echoed: what follows env: may be the secret itself.
			r.err = errors.New("what follows env: is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); not shown, as it may be the secret itself")
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
		if dir := credsDirOf(p); dir != "" {
			r.err = fmt.Errorf("%s is inside the credentials dir %s (pbxfleet creds): its files are keys, never a trunk secret", p, dir)
			return r
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
	if what := secretpolicy.KeyMaterial(r.value); what != "" {
		r.err = fmt.Errorf("the secret from %s is %s: %w", r.source, what, secretpolicy.ErrKeyMaterial)
		return r
	}
	if err := asterisk.CheckSecret(r.value); err != nil {
		r.err = fmt.Errorf("the secret from %s: %w", r.source, err)
		return r
	}
	r.weak = secretpolicy.Weakness(r.value)
	return r
}

// credsDirOf returns the credentials dir (what `pbxfleet creds` writes: an
// auth.json beside the orchestrator's or the operator's seed) that path lies
// in, at any depth and after symbolic links, or "" when it lies in none.
func credsDirOf(path string) string {
	p, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		if isCredsDir(dir) {
			return dir
		}
		if parent := filepath.Dir(dir); parent == dir {
			return ""
		}
	}
}

// isCredsDir reports whether dir holds a fleet's credentials.
func isCredsDir(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, credsAuthFile)); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	for _, seed := range []string{"operator.nk", "orchestrator.nk", "orchestrator.xk"} {
		if _, err := os.Stat(filepath.Join(dir, seed)); err == nil {
			return true
		}
	}
	return false
}

// credsAuthFile is internal/creds.AuthFile (the planner does not import the
// credentials package; a test checks they agree).
const credsAuthFile = "auth.json"

// readSecretFile reads a secret file, dropping one trailing newline (what an
// editor or echo adds); any other whitespace is left for CheckSecret to refuse.
// Only a regular file is read: it is checked before the open (a FIFO would
// block plan until someone writes to it, ignoring Ctrl-C) and again on the
// open file, which is opened without blocking.
func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
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

// fileKind names what a non-regular file is.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file"
}
