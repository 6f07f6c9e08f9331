package opcli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestRestoreLines: a rollback's line for a site says each node's restore,
// and why a node got none, once every covered node has its end.
func TestRestoreLines(t *testing.T) {
	conv := &orchestrator.NodeResult{Outcome: events.OutcomeConverged}
	tests := []struct {
		name  string
		nodes []orchestrator.NodeState
		want  string // "" : no line yet
	}{
		{"both restored", []orchestrator.NodeState{
			{Role: "pbx", RestoreRevision: 3, Restore: conv}, {Role: "oml", RestoreRevision: 3, Restore: conv}},
			"restored: pbx r3 converged; oml r3 converged"},
		{"one waits for its result", []orchestrator.NodeState{
			{Role: "pbx", RestoreRevision: 3, Restore: conv}, {Role: "oml", RestoreRevision: 3}}, ""},
		{"one had nothing before", []orchestrator.NodeState{
			{Role: "pbx", RestoreRevision: 3, Restore: conv}, {Role: "oml", RestoreRevision: 2, RestoreNote: orchestrator.ReasonNoPrevious}},
			"restored: pbx r3 converged; oml not restored: it had no desired state before this rollout"},
		{"someone else changed the key", []orchestrator.NodeState{
			{Role: "pbx", RestoreRevision: 3, RestoreNote: orchestrator.ReasonSuperseded}, {Role: "oml", UpToDate: true}},
			"pbx not restored: its desired key changed since (another rollout or a hand put); left as it is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			l := NewRolloutLines(&out)
			l.Update(orchestrator.Rollout{ID: "r", Phase: orchestrator.PhaseRollingBack,
				Sites: []orchestrator.SiteState{{Site: "s1", Outcome: orchestrator.SiteFailed, Nodes: tt.nodes}}})
			if tt.want == "" {
				assert.NotContains(t, out.String(), "rollback s1")
				return
			}
			assert.Contains(t, out.String(), tt.want)
		})
	}
}
