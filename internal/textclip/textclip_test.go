package textclip

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short stays", "abc", 10, "abc"},
		{"exact stays", "abcdef", 6, "abcdef"},
		{"cut with the marker, n bytes in all", "abcdefghij", 7, "abcd…"},
		{"never inside a rune", "ñññññ", 8, "ññ…"},
		{"n below the marker", "abcdef", 2, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clip(tt.s, tt.n)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
			if len(tt.s) > tt.n && tt.n >= len(marker) {
				assert.LessOrEqual(t, len(got), tt.n)
			}
		})
	}
	assert.Equal(t, strings.Repeat("x", Echo)+"…", Value(strings.Repeat("x", 50<<20)), "a 50 MB value echoes 64 bytes")
	assert.Equal(t, "short", Value("short"))
}
