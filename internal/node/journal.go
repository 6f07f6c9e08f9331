package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
)

// Journal is what the agent remembers across restarts, in <state>/journal.json.
// It is rewritten atomically at each phase boundary, so after a crash the agent
// knows whether an apply was in flight and which bytes to put back.
type Journal struct {
	// Applied is the last revision that converged (or was restored), with the
	// hashes of the managed files as written; drift is measured against them.
	Applied AppliedState `json:"applied"`
	// LastSeen is the highest revision the agent has finished handling, whatever
	// its outcome; revisions at or below it are ignored.
	LastSeen uint64 `json:"last_seen"`
	// LastSeenRollout is the rollout of revision LastSeen ("" when put by hand).
	LastSeenRollout string `json:"last_seen_rollout,omitempty"`
	// InFlight is set while an apply is under way.
	InFlight *InFlight `json:"in_flight,omitempty"`
}

// AppliedState is the revision the host runs and the hashes of its managed files.
type AppliedState struct {
	Revision uint64            `json:"revision"`
	Hashes   map[string]string `json:"hashes,omitempty"`
	At       time.Time         `json:"at"`
	// Trunk is the applied intent without its secret: what check and status verify.
	Trunk *events.Trunk `json:"trunk,omitempty"`
}

// InFlight records an apply under way.
type InFlight struct {
	Revision uint64 `json:"revision"`
	// Rollout is the rollout of the desired state being applied.
	Rollout string `json:"rollout,omitempty"`
	Phase   string `json:"phase"`
	// Prev maps each managed file to whether it existed before; its old bytes are
	// in <state>/prev/<name>.
	Prev    map[string]bool `json:"prev"`
	Started time.Time       `json:"started"`
	// Objects is the snapshot of the side's objects (Objects.Snapshot) taken
	// before the apply changed anything; empty without Objects.
	Objects json.RawMessage `json:"objects,omitempty"`
}

// Phases of an apply, recorded in the journal.
const (
	phaseWriting = "writing"
	phaseWritten = "written"
	// phaseAwaitingProbe: written, reloaded and checked; waiting for the probe
	// order. A restart undoes it like any apply in flight.
	phaseAwaitingProbe = "awaiting_probe"
)

type stateDir string

func (s stateDir) journalPath() string         { return filepath.Join(string(s), "journal.json") }
func (s stateDir) prevPath(name string) string { return filepath.Join(string(s), "prev", name) }

func (s stateDir) ensure() error {
	if err := os.MkdirAll(filepath.Join(string(s), "prev"), 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", s, err)
	}
	return nil
}

func (s stateDir) loadJournal() (Journal, error) {
	var j Journal
	b, err := os.ReadFile(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("read journal: %w", err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("decode journal %s: %w", s.journalPath(), err)
	}
	return j, nil
}

func (s stateDir) saveJournal(j Journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	return writeAtomic(s.journalPath(), b, 0o600)
}

// The outbox holds each result until JetStream acknowledged it, one file per
// event id, so a result is not lost when NATS is down or the agent dies right
// after an apply. Event ids are made of [a-z0-9._-] (events.Result.EventID).
func (s stateDir) outboxDir() string { return filepath.Join(string(s), "outbox") }

func (s stateDir) saveOutbox(id string, data []byte) error {
	if err := os.MkdirAll(s.outboxDir(), 0o700); err != nil {
		return fmt.Errorf("create outbox: %w", err)
	}
	return writeAtomic(filepath.Join(s.outboxDir(), id+".json"), data, 0o600)
}

// outbox returns the pending results, oldest first.
func (s stateDir) outbox() ([]string, error) {
	entries, err := os.ReadDir(s.outboxDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	type item struct {
		path string
		mod  time.Time
	}
	var items []item
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		items = append(items, item{filepath.Join(s.outboxDir(), e.Name()), info.ModTime()})
	}
	slices.SortFunc(items, func(a, b item) int { return a.mod.Compare(b.mod) })
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.path
	}
	return paths, nil
}
