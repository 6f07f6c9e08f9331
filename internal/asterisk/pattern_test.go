package asterisk

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		// OML's [from-pbx] agent route: SIP number then id (docs/asterisk.md#calls-from-the-pbx-to-omnileads).
		{"_1XXX.", []string{"10061", "10072", "1006123"}, []string{"1006", "20061", "", "1a061"}},
		// The old default would miss agents 1 to 9: '.' needs at least one more digit.
		{"_1XXXX.", []string{"100610", "100612"}, []string{"10061", "10072"}},
		{"_NXXXXXX", []string{"2345678"}, []string{"1345678", "23456789", "234567"}},
		{"_Z!", []string{"1", "19", "9000"}, []string{"0", "09", ""}},
		{"_[1-3]5[079]", []string{"150", "257", "359"}, []string{"450", "151", "15"}},
		{"_99999", []string{"99999"}, []string{"9999", "999999"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := CompilePattern(tt.pattern)
			require.NoError(t, err)
			for _, n := range tt.yes {
				assert.True(t, p.Match(n), "%s should match %q", tt.pattern, n)
			}
			for _, n := range tt.no {
				assert.False(t, p.Match(n), "%s should not match %q", tt.pattern, n)
			}
		})
	}
}

func TestPatternCompileErrors(t *testing.T) {
	for _, bad := range []string{"", "_", "1XXX.", "_1[23", "_1[]X", "_1[a]", "_1[3-1]", "_1.X", "_1!!", "_1]X", "_1-2", "_x"} {
		t.Run(bad, func(t *testing.T) {
			_, err := CompilePattern(bad)
			require.ErrorIs(t, err, ErrBadPattern)
		})
	}
}

// TestPatternOutside: an agent pattern must lie within OMniLeads' agent range
// (_1XXX.); a wider one is refused with a number it matches and the range does
// not (a catch-all would send 911 to OMniLeads).
func TestPatternOutside(t *testing.T) {
	agents := MustCompilePattern(OMLAgentPattern)
	tests := []struct {
		pattern string
		within  bool
	}{
		{"_1XXX.", true},
		{"_1XXXX.", true},
		{"_10XX.", true},
		{"_1[0-5]XX.", true},
		{"_10061", true},
		{"_1XXX[1-9]", true},
		{"_X.", false},
		{"_X!", false},
		{"_!", false},
		{"_.", false},
		{"_1.", false},
		{"_1XX.", false},
		{"_1XXX!", false},
		{"_[0-1]XXX.", false},
		{"_2XXX.", false},
		{"_NXXXXXX", false},
		{"_Z!", false},
		{"_1006", false},
		{"_911", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p := MustCompilePattern(tt.pattern)
			n := p.Outside(agents)
			if tt.within {
				assert.Empty(t, n)
				return
			}
			require.NotEmpty(t, n)
			if n != "(none)" {
				assert.True(t, p.Match(n), "%s matches its example %s", tt.pattern, n)
				assert.False(t, agents.Match(n), "%s is outside the agents' range", n)
			}
		})
	}
}
