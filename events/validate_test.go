package events

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDesiredValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(d *Desired)
		errs []error
	}{
		{"ok", func(*Desired) {}, nil},
		{"ok sealed", func(d *Desired) { d.Trunk.Secret, d.Trunk.SealedSecret, d.Trunk.SealedBy = "", "c2VhbGVk", "XKEY" }, nil},
		{"ok per agent", func(d *Desired) { d.Trunk.AgentRouting, d.Trunk.AgentPattern = AgentRoutingPerAgent, "" }, nil},
		{"ok no agents", func(d *Desired) { d.Trunk.Agents, d.Trunk.AgentRouting, d.Trunk.AgentPattern = nil, "", "" }, nil},
		{"bad node", func(d *Desired) { d.Node = "bsas-1" }, []error{ErrInvalidNode}},
		{"bad role", func(d *Desired) { d.Node = "bsas-1.sip" }, []error{ErrInvalidNode, ErrInvalidRole}},
		{"revision 0", func(d *Desired) { d.Revision = 0 }, []error{ErrInvalidRevision}},
		{"bad trunk site", func(d *Desired) { d.Trunk.Site = "Bsas" }, []error{ErrInvalidSite}},
		{"trunk of another site", func(d *Desired) { d.Trunk.Site = "bsas-2" }, []error{ErrSubjectMismatch}},
		{"scenario", func(d *Desired) { d.Trunk.Scenario = "LAN" }, []error{ErrInvalidField}},
		{"pbx port", func(d *Desired) { d.Trunk.PBXPort = 70000 }, []error{ErrInvalidField}},
		{"oml port", func(d *Desired) { d.Trunk.OMLPort = 0 }, []error{ErrInvalidField}},
		{"no address", func(d *Desired) { d.Trunk.OMLAddress = "" }, []error{ErrInvalidField}},
		{"no transport", func(d *Desired) { d.Trunk.OMLTransport = "" }, []error{ErrInvalidField}},
		{"no trunk name", func(d *Desired) { d.Trunk.PBXTrunkName = "" }, []error{ErrInvalidField}},
		{"no user", func(d *Desired) { d.Trunk.OMLUser = "" }, []error{ErrInvalidField}},
		{"no secret", func(d *Desired) { d.Trunk.Secret = "" }, []error{ErrInvalidField}},
		{"secret and sealed", func(d *Desired) { d.Trunk.SealedSecret, d.Trunk.SealedBy = "c2VhbGVk", "XKEY" }, []error{ErrInvalidField}},
		{"sealed without sender", func(d *Desired) { d.Trunk.Secret, d.Trunk.SealedSecret = "", "c2VhbGVk" }, []error{ErrInvalidField}},
		{"sender without sealed", func(d *Desired) { d.Trunk.SealedBy = "XKEY" }, []error{ErrInvalidField}},
		{"sealed not base64", func(d *Desired) { d.Trunk.Secret, d.Trunk.SealedSecret, d.Trunk.SealedBy = "", "not base64!", "XKEY" }, []error{ErrInvalidField}},
		{"no codecs", func(d *Desired) { d.Trunk.PBXCodecs = nil }, []error{ErrInvalidField}},
		{"empty codec", func(d *Desired) { d.Trunk.OMLCodecs = []string{"alaw", ""} }, []error{ErrInvalidField}},
		{"negative qualify", func(d *Desired) { d.Trunk.QualifyFrequency = -1 }, []error{ErrInvalidField}},
		{"empty did", func(d *Desired) { d.Trunk.DIDs[1].Number = "" }, []error{ErrInvalidField}},
		{"agent without id", func(d *Desired) { d.Trunk.Agents[0].ID = "" }, []error{ErrInvalidField}},
		{"agent without sip number", func(d *Desired) { d.Trunk.Agents[0].SIPNumber = "" }, []error{ErrInvalidField}},
		{"agents without routing", func(d *Desired) { d.Trunk.AgentRouting = "" }, []error{ErrInvalidField}},
		{"pattern without pattern", func(d *Desired) { d.Trunk.AgentPattern = "" }, []error{ErrInvalidField}},
		{"unknown routing", func(d *Desired) { d.Trunk.AgentRouting = "round_robin" }, []error{ErrInvalidField}},
		{"every problem at once", func(d *Desired) { d.Revision, d.Trunk.Scenario = 0, "" }, []error{ErrInvalidRevision, ErrInvalidField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sampleDesired()
			tt.edit(&d)
			assertValidate(t, d.Validate(), tt.errs)
		})
	}
}

func TestResultValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Result)
		errs []error
	}{
		{"ok", func(*Result) {}, nil},
		{"ok rejected without revision", func(r *Result) { r.Revision, r.Outcome, r.RestoredRevision = 0, OutcomeRejected, 0 }, nil},
		{"bad node", func(r *Result) { r.Node = "x" }, []error{ErrInvalidNode}},
		{"revision 0", func(r *Result) { r.Revision, r.RestoredRevision = 0, 0 }, []error{ErrInvalidRevision}},
		{"no outcome", func(r *Result) { r.Outcome = "" }, []error{ErrInvalidField}},
		{"unknown outcome", func(r *Result) { r.Outcome = "ok" }, []error{ErrInvalidField}},
		{"failed without reason", func(r *Result) { r.Outcome, r.Reason, r.RestoredRevision = OutcomeFailed, "", 0 }, []error{ErrInvalidField}},
		{"no start", func(r *Result) { r.StartedAt = time.Time{} }, []error{ErrInvalidField}},
		{"zero finish", func(r *Result) { r.FinishedAt = time.Time{} }, []error{ErrInvalidField}},
		{"finish before start", func(r *Result) { r.FinishedAt = r.StartedAt.Add(-1) }, []error{ErrInvalidField}},
		{"unknown phase", func(r *Result) { r.Timings["qualify"] = 1 }, []error{ErrInvalidField}},
		{"negative timing", func(r *Result) { r.Timings[PhaseReload] = -1 }, []error{ErrInvalidField}},
		{"file without name", func(r *Result) { r.Files[0].Name = "" }, []error{ErrInvalidField}},
		{"upper-case hash", func(r *Result) {
			r.Files[0].SHA256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
		}, []error{ErrInvalidField}},
		{"short hash", func(r *Result) { r.Files[0].SHA256 = "9f86" }, []error{ErrInvalidField}},
		{"check without name", func(r *Result) { r.Checks[1].Name = "" }, []error{ErrInvalidField}},
		{"no trunk state", func(r *Result) { r.Trunk.State = "" }, []error{ErrInvalidField}},
		{"negative rtt", func(r *Result) { r.Trunk.RTTMS = -1 }, []error{ErrInvalidField}},
		{"NaN rtt", func(r *Result) { r.Trunk.RTTMS = math.NaN() }, []error{ErrInvalidField}},
		{"probe without verdict", func(r *Result) { r.Probe.Verdict = "" }, []error{ErrInvalidField}},
		{"probe without number", func(r *Result) { r.Probe.Number = "" }, []error{ErrInvalidField}},
		{"negative hangup cause", func(r *Result) { r.Probe.HangupCause = -1 }, []error{ErrInvalidField}},
		{"restored without rollback", func(r *Result) { r.Outcome = OutcomeFailed }, []error{ErrInvalidField}},
		{"restored a newer revision", func(r *Result) { r.RestoredRevision = 7 }, []error{ErrInvalidField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleResult()
			r.Timings = map[string]int64{PhaseRender: 1, PhaseReload: 2}
			tt.edit(&r)
			assertValidate(t, r.Validate(), tt.errs)
		})
	}
}

func TestStatusValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *Status)
		errs []error
	}{
		{"ok", func(*Status) {}, nil},
		{"ok before the first apply", func(s *Status) { s.AppliedRevision, s.Outcome = 0, "" }, nil},
		{"bad node", func(s *Status) { s.Node = "a.b.c" }, []error{ErrInvalidNode}},
		{"unknown outcome", func(s *Status) { s.Outcome = "good" }, []error{ErrInvalidField}},
		{"no trunk state", func(s *Status) { s.Trunk.State = "" }, []error{ErrInvalidField}},
		{"drift files without drift", func(s *Status) { s.Drift = false }, []error{ErrInvalidField}},
		{"empty drift file", func(s *Status) { s.DriftFiles = []string{""} }, []error{ErrInvalidField}},
		{"no version", func(s *Status) { s.Version = "" }, []error{ErrInvalidField}},
		{"no time", func(s *Status) { s.At = time.Time{} }, []error{ErrInvalidField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleStatus()
			tt.edit(&s)
			assertValidate(t, s.Validate(), tt.errs)
		})
	}
}

func assertValidate(t *testing.T, err error, want []error) {
	t.Helper()
	if want == nil {
		assert.NoError(t, err)
		return
	}
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n", "one line")
	for _, w := range want {
		assert.True(t, errors.Is(err, w), "%v is not %v", err, w)
	}
}
