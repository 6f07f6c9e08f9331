package events

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateSite(t *testing.T) {
	tests := []struct {
		site string
		ok   bool
	}{
		{"bsas-1", true},
		{"a", true},
		{"site_2-b", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Bsas", false},
		{"bsas.1", false},
		{"bsas 1", false},
		{"bsas*", false},
		{"bsas>", false},
		{"sité", false},
	}
	for _, tt := range tests {
		t.Run(tt.site, func(t *testing.T) {
			err := ValidateSite(tt.site)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalidSite)
		})
	}
}

func TestValidateRole(t *testing.T) {
	for _, role := range []string{RolePBX, RoleOML} {
		assert.NoError(t, ValidateRole(role), role)
	}
	for _, role := range []string{"", "PBX", "web", "pbx "} {
		assert.ErrorIs(t, ValidateRole(role), ErrInvalidRole, role)
	}
}

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		id         string
		site, role string
		errs       []error
	}{
		{id: "bsas-1.pbx", site: "bsas-1", role: "pbx"},
		{id: "x_1.oml", site: "x_1", role: "oml"},
		{id: "bsas-1", errs: []error{ErrInvalidNode}},
		{id: "", errs: []error{ErrInvalidNode}},
		{id: ".pbx", errs: []error{ErrInvalidNode, ErrInvalidSite}},
		{id: "Bsas.pbx", errs: []error{ErrInvalidNode, ErrInvalidSite}},
		{id: "bsas-1.web", errs: []error{ErrInvalidNode, ErrInvalidRole}},
		{id: "bsas-1.pbx.check", errs: []error{ErrInvalidNode, ErrInvalidRole}},
		{id: "a.b.pbx", errs: []error{ErrInvalidNode, ErrInvalidRole}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			site, role, err := ParseNodeID(tt.id)
			if tt.errs == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.site, site)
				assert.Equal(t, tt.role, role)
				assert.Equal(t, tt.id, NodeID(site, role))
				return
			}
			for _, want := range tt.errs {
				assert.ErrorIs(t, err, want)
			}
		})
	}
}

func TestParseResultSubject(t *testing.T) {
	tests := []struct {
		subject    string
		site, role string
		err        error
	}{
		{subject: "pbxfleet.result.bsas-1.pbx", site: "bsas-1", role: "pbx"},
		{subject: "pbxfleet.result.bsas-1.oml", site: "bsas-1", role: "oml"},
		{subject: "pbxfleet.results.bsas-1.pbx", err: ErrInvalidSubject},
		{subject: "pbxfleet.result", err: ErrInvalidSubject},
		{subject: "pbxfleet.result.bsas-1", err: ErrInvalidNode},
		{subject: "pbxfleet.result.*.pbx", err: ErrInvalidSite},
		{subject: "pbxfleet.result.bsas-1.pbx.x", err: ErrInvalidRole},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			site, role, err := ParseResultSubject(tt.subject)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.subject, ResultSubject(site, role))
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct{ got, want string }{
		{NodeID("bsas-1", RolePBX), "bsas-1.pbx"},
		{ResultSubject("bsas-1", RolePBX), "pbxfleet.result.bsas-1.pbx"},
		{NodeServiceGroup("bsas-1", RoleOML), "pbxfleet.node.bsas-1.oml"},
		{CheckSubject("bsas-1", RolePBX), "pbxfleet.node.bsas-1.pbx.check"},
		{StatusSubject("bsas-1", RoleOML), "pbxfleet.node.bsas-1.oml.status"},
		{RolloutSubject(RolloutStart), "pbxfleet.rollout.start"},
		{RolloutSubject(RolloutRollback), "pbxfleet.rollout.rollback"},
		{NodeSource("bsas-1", RolePBX), "pbxfleet/node/bsas-1.pbx"},
		{ResultSubjects, "pbxfleet.result.>"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
	assert.Equal(t, []string{"start", "status", "pause", "resume", "abort", "rollback"}, RolloutVerbs())
	assert.Equal(t, []string{"pbxfleet.desired.v1", "pbxfleet.result.v1", "pbxfleet.status.v1"}, EventTypes())
}
