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
