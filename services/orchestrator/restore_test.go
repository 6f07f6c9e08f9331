package orchestrator

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDecideRestore covers every way a covered node's key can look when its
// restore is decided.
func TestDecideRestore(t *testing.T) {
	const id, other = "r-1", "r-0"
	// The node: put revision 8 by this rollout over revision 7 (another
	// rollout's); its restore would be revision 9.
	n := NodeState{Role: "pbx", Revision: 8, PrevRevision: 7, RestoreRevision: 9}
	fresh := NodeState{Role: "pbx", Revision: 1, RestoreRevision: 2} // no key before this rollout
	tests := []struct {
		name    string
		key     restoreKey
		node    NodeState
		hasPrev bool
		want    restoreAction
	}{
		{"our forward revision, a previous intent", restoreKey{true, true, id, 8}, n, true, restorePut},
		{"our forward revision, nothing before", restoreKey{true, true, id, 8}, n, false, restoreNoPrevious},
		{"our restore revision already there", restoreKey{true, true, id, 9}, n, true, restoreAlreadyPut},
		{"still the revision before this rollout", restoreKey{true, true, other, 7}, n, true, restoreNeverPut},
		{"no key, as before this rollout", restoreKey{true, false, "", 0}, fresh, false, restoreNeverPut},
		{"no key any more (deleted since)", restoreKey{true, false, "", 0}, n, true, restoreSuperseded},
		{"another rollout's newer revision", restoreKey{true, true, "r-2", 10}, n, true, restoreSuperseded},
		{"our rollout, an unknown revision", restoreKey{true, true, id, 12}, n, true, restoreSuperseded},
		{"a hand put with the old revision number", restoreKey{true, true, "", 7}, n, true, restoreNeverPut},
		{"an unreadable value", restoreKey{false, true, "", 0}, n, true, restoreSuperseded},
		{"an unreadable value where none was", restoreKey{false, false, "", 0}, fresh, false, restoreSuperseded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, decideRestore(tt.key, tt.node, id, tt.hasPrev))
		})
	}
}
