package node

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// writeAtomic replaces path with data so that a reader (Asterisk, or this agent
// after a crash) sees either the old bytes or the new ones, never a mix: write a
// temp file in the same directory, fsync it, keep the old file's mode and owner,
// rename over, fsync the directory.
func writeAtomic(path string, data []byte, defaultMode fs.FileMode) error {
	dir := filepath.Dir(path)
	mode := defaultMode
	uid, gid := -1, -1
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".pbxfleet-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	cleanup := func() { _ = os.Remove(tmp.Name()) }
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		cleanup()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		cleanup()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		cleanup()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if uid >= 0 {
		// Keep the owner (asterisk:asterisk on a real host). Only root may chown to
		// another user; an agent running as the owner already matches.
		if err := os.Lchown(tmp.Name(), uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			cleanup()
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		cleanup()
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// readOptional returns a file's bytes, or nil and false when it does not exist.
func readOptional(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return b, true, nil
}

// hasLine reports whether content has line as one of its lines (surrounding
// blanks ignored).
func hasLine(content []byte, line string) bool {
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == line {
			return true
		}
	}
	return false
}

// ensureInclude adds line to the end of parent once. It creates parent when it
// is missing. The include target must already exist (docs/asterisk.md#where-the-files-go: a missing
// #include target makes Asterisk reject the whole parent file).
func ensureInclude(parent, line string) (added bool, err error) {
	old, exists, err := readOptional(parent)
	if err != nil {
		return false, err
	}
	if exists && hasLine(old, line) {
		return false, nil
	}
	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		buf.WriteByte('\n')
	}
	buf.WriteString("; added by pbxfleet: its managed file\n")
	buf.WriteString(line + "\n")
	if err := writeAtomic(parent, buf.Bytes(), 0o644); err != nil {
		return false, fmt.Errorf("add include to %s: %w", parent, err)
	}
	return true, nil
}

// sha256Hex returns the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
