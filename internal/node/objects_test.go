package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// memObjects is an Objects kept in memory: the "objects" are the number of DIDs
// of the last Apply, and the trunk section it writes where OMniLeads writes the
// trunks it owns; its checks fail while failVerify is set.
type memObjects struct {
	confDir    string
	mu         sync.Mutex
	current    int
	failVerify bool
	calls      []string
}

func (m *memObjects) OwnsTrunk() bool { return true }

func (m *memObjects) Snapshot(context.Context, events.Trunk) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "snapshot")
	return json.Marshal(m.current)
}

func (m *memObjects) Apply(_ context.Context, t events.Trunk, secret string) ([]events.Check, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if secret == "" {
		return nil, errors.New("no secret")
	}
	m.calls = append(m.calls, "apply")
	m.current = len(t.DIDs)
	err := os.WriteFile(filepath.Join(m.confDir, "oml_pjsip_trunks.conf"), []byte("["+t.OMLTrunkName+"]\ntype=wizard\n"), 0o644)
	return m.checks(), err
}

func (m *memObjects) Verify(context.Context, events.Trunk) []events.Check {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "verify")
	return m.checks()
}

func (m *memObjects) checks() []events.Check {
	return []events.Check{{Name: "objects", Passed: !m.failVerify, Detail: "in memory"}}
}

func (m *memObjects) Restore(_ context.Context, snap json.RawMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "restore")
	return json.Unmarshal(snap, &m.current)
}

func (m *memObjects) take() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return m.current, c
}

// TestObjectsFollowTheFiles: an agent with Objects keeps, changes, verifies and
// puts back its objects at the same points as its files, and does not write the
// trunk into the side's trunk file.
func TestObjectsFollowTheFiles(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	objs := &memObjects{confDir: h.confDir}
	h.start(WithObjects(objs))

	tr := seedTrunk() // one DID
	h.put(1, tr)
	r := h.nextResult()
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	cur, calls := objs.take()
	assert.Equal(t, 1, cur)
	assert.Equal(t, []string{"snapshot", "apply"}, calls, "the apply's own checks are reported: no second read")
	c, ok := checkByName(r, "objects")
	require.True(t, ok)
	assert.True(t, c.Passed)
	_, ok = checkByName(r, CheckProbe)
	assert.True(t, ok, "the probe runs after the objects verified")
	assert.NotContains(t, h.read(managedName(events.RoleOML)), "[issabel]", "the trunk is an object, not a section of the file")

	objs.mu.Lock()
	objs.failVerify = true
	objs.mu.Unlock()
	tr.DIDs = append(tr.DIDs, events.DID{Number: "098099"})
	h.put(2, tr)
	r = h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome, r.Reason)
	assert.Contains(t, r.Reason, "objects")
	cur, calls = objs.take()
	assert.Equal(t, 1, cur, "the objects of revision 1 are back")
	assert.Equal(t, []string{"snapshot", "apply", "restore"}, calls)
	_, ok = checkByName(r, CheckProbe)
	assert.False(t, ok, "no probe once the objects failed")
}

// TestObjectsPutBackAfterACrash: an agent killed between writing and reloading
// keeps the objects' snapshot in its journal; the next process on the same
// state dir restores them before it applies the revision again.
func TestObjectsPutBackAfterACrash(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	objs := &memObjects{confDir: h.confDir}
	stop := h.start(WithObjects(objs), WithHooks(Hooks{AfterWrite: func() error { return errKilled }}))
	tr := seedTrunk()
	tr.DIDs = append(tr.DIDs, events.DID{Number: "098099"})
	h.put(1, tr)
	r := h.nextResult()
	require.Equal(t, events.OutcomeFailed, r.Outcome)
	stop()
	cur, calls := objs.take()
	assert.Equal(t, 2, cur, "the objects were changed before the crash")
	assert.Equal(t, []string{"snapshot", "apply"}, calls)
	j, err := stateDir(h.stateDir).loadJournal()
	require.NoError(t, err)
	require.NotNil(t, j.InFlight)
	assert.JSONEq(t, "0", string(j.InFlight.Objects), "the journal keeps the objects' previous definitions")

	h.start(WithObjects(objs))
	r = h.nextResult()
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	_, calls = objs.take()
	assert.Equal(t, []string{"restore", "snapshot", "apply"}, calls, "put back first, then applied again")
}
