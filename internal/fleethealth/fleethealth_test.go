package fleethealth

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pbxfleet/pbxfleet/events"
)

func TestJudge(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ok := &events.Status{Node: "s.pbx", AppliedRevision: 3, Trunk: events.TrunkState{State: "OK", RTTMS: 2}, Healthy: true, At: at}
	sick := &events.Status{Node: "s.pbx", AppliedRevision: 3, Trunk: events.TrunkState{State: "UNREACHABLE"}, Detail: "trunk down", At: at}
	drift := &events.Status{Node: "s.pbx", AppliedRevision: 3, Drift: true, DriftFiles: []string{"a.conf"}, Healthy: true, At: at}
	d3 := &events.Desired{Revision: 3}
	d4 := &events.Desired{Revision: 4}
	for _, tt := range []struct {
		name    string
		in      Input
		healthy bool
		problem string
	}{
		{"healthy", Input{Desired: d3, Status: ok}, true, ""},
		{"no desired state yet", Input{Status: ok}, true, ""},
		{"no status", Input{Desired: d3}, false, "no status: the agent is not reporting"},
		{"status says unhealthy", Input{Desired: d3, Status: sick}, false, "trunk down"},
		{"behind its desired revision", Input{Desired: d4, Status: ok}, false, "runs revision 3, desired 4"},
		{"drift", Input{Desired: d3, Status: drift}, false, ""},
		{"unreadable status", Input{Desired: d3, StatusErr: errors.New("bad")}, false, "status unreadable: bad"},
		{"unreadable desired state", Input{DesiredErr: errors.New("bad"), Status: ok}, true, "desired state unreadable: bad"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge("s.pbx", tt.in)
			assert.Equal(t, tt.healthy, v.Healthy)
			assert.Equal(t, tt.problem, v.Problem)
			assert.Equal(t, "s", v.Site)
			assert.Equal(t, "pbx", v.Role)
		})
	}
	assert.Equal(t, "-", Judge("s.oml", Input{}).Trunk)
}
