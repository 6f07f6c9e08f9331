package trunkmodel

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSiteProblem(t *testing.T) {
	tests := []struct {
		site string
		ok   bool
	}{
		{"bsas-1", true}, {"rosario_docker", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"Bsas", false}, {"a.b", false}, {"a>", false}, {"ñ", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, SiteProblem(tt.site) == "", "%q: %s", tt.site, SiteProblem(tt.site))
	}
}

func TestAudioCodec(t *testing.T) {
	for _, c := range []string{"alaw", "ulaw", "g729", "opus", "slin16"} {
		assert.True(t, AudioCodec(c), c)
	}
	for _, c := range []string{"opus9000", "ALAW", "h264", "", "alaw,ulaw"} {
		assert.False(t, AudioCodec(c), c)
	}
}

// TestOMLRouteFields: OMniLeads' validators and field lengths, at the edges.
func TestOMLRouteFields(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) bool
		value string
		want  bool
	}{
		{"name", OMLName, "to_issabel", true},
		{"name at its length", OMLName, strings.Repeat("r", MaxOMLName), true},
		{"name too long", OMLName, strings.Repeat("r", MaxOMLName+1), false},
		{"name with a space", OMLName, "to pbx", false},
		{"name empty", OMLName, "", false},
		{"dial options", OMLDialOptions, "Tt", true},
		{"dial options too long", OMLDialOptions, strings.Repeat("T", MaxOMLDialOptions+1), false},
		{"dial options foreign letter", OMLDialOptions, "Tg", false},
		{"digits", OMLDigits, "+54*9#", true},
		{"digits too long", OMLDigits, strings.Repeat("9", MaxOMLDigits+1), false},
		{"digits with a letter", OMLDigits, "9a", false},
		{"pattern", OMLMatchPattern, "[2-9]XX.", true},
		{"pattern too long", OMLMatchPattern, strings.Repeat("X", MaxOMLPattern+1), false},
		{"pattern with a letter Asterisk does not read", OMLMatchPattern, "X.a", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.check(tt.value), "%s: %q", tt.name, tt.value)
	}
}
