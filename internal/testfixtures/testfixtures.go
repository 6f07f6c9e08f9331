// Package testfixtures finds the project's shared material for tests: the real
// Asterisk captures (shared/fixtures/asterisk-20.20.1) and the seed procedure.
// shared/ sits beside the repository (/work/shared in development,
// <clone>/../shared in CI), so it is found by walking up from the test's directory.
package testfixtures

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// ErrNoShared means no parent directory holds shared/fixtures.
var ErrNoShared = errors.New("shared/fixtures not found above the working directory")

// AsteriskDir returns the directory of the real Asterisk 20.20.1 captures.
func AsteriskDir() (string, error) {
	return find(filepath.Join("shared", "fixtures", "asterisk-20.20.1"))
}

// SeedPath returns the path of the seed procedure the project automates.
func SeedPath() (string, error) {
	return find(filepath.Join("shared", "seed", "000_db9aa3c20f96d9d0.txt"))
}

func find(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, rel)
		if _, err := os.Stat(cand); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoShared
		}
		dir = parent
	}
}

// Read returns one capture's bytes, unmodified, failing the test when missing.
func Read(tb testing.TB, name string) []byte {
	tb.Helper()
	dir, err := AsteriskDir()
	if err != nil {
		tb.Fatalf("fixtures: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatalf("fixtures: %v", err)
	}
	return b
}
