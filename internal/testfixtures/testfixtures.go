// Package testfixtures holds the project's test data taken from outside it: real
// Asterisk 20.20.1 output (asterisk-20.20.1/) and the trunk blocks of the manual
// procedure pbxfleet automates (manual/). Both are embedded, so a test reads them
// the same way from any clone; README.md says where each file came from.
package testfixtures

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"
)

//go:embed asterisk-20.20.1 manual
var files embed.FS

// asteriskDir is the directory of the real Asterisk captures inside files.
const asteriskDir = "asterisk-20.20.1"

// ManualBlocks is the name of the manual's trunk configuration blocks (reStructuredText).
const ManualBlocks = "manual/trunk_blocks.rst"

// Read returns one capture's bytes, unmodified, failing the test when there is
// no such capture.
func Read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := files.ReadFile(path.Join(asteriskDir, name))
	if err != nil {
		tb.Fatalf("fixtures: %v", err)
	}
	return b
}

// Names returns the file names of every capture, sorted.
func Names(tb testing.TB) []string {
	tb.Helper()
	entries, err := files.ReadDir(asteriskDir)
	if err != nil {
		tb.Fatalf("fixtures: %v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Manual returns the manual's trunk configuration blocks, failing the test when
// they are missing.
func Manual(tb testing.TB) []byte {
	tb.Helper()
	b, err := files.ReadFile(ManualBlocks)
	if err != nil {
		tb.Fatalf("fixtures: %v", err)
	}
	return b
}

// WriteAsterisk writes every capture into dir (created if needed), for programs
// that read them from a directory, such as the node tests' fake asterisk. It
// returns an error naming the file it could not write.
func WriteAsterisk(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	return fs.WalkDir(files, asteriskDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return fmt.Errorf("fixtures: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, d.Name()), b, 0o644); err != nil {
			return fmt.Errorf("fixtures: write %s: %w", d.Name(), err)
		}
		return nil
	})
}
