package release_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/release"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want release.Version
		err  bool
	}{
		{"release-2.6.3", release.Version{Major: 2, Minor: 6, Patch: 3}, false},
		{"1.33.2", release.Version{Major: 1, Minor: 33, Patch: 2}, false},
		{"v2.4.0", release.Version{Major: 2, Minor: 4}, false},
		{" 2.6 ", release.Version{Major: 2, Minor: 6}, false},
		{"v0.1.0-5-gabc1234-dirty", release.Version{Minor: 1}, false},
		{"1.2.3+build.7", release.Version{Major: 1, Minor: 2, Patch: 3}, false},
		{"develop", release.Version{}, true},
		{"", release.Version{}, true},
		{"2", release.Version{}, true},
		{"release-", release.Version{}, true},
		{"99999999999.1.1", release.Version{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := release.Parse(tt.in)
			if tt.err {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "is not a release number")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestString(t *testing.T) {
	assert.Equal(t, "2.6.0", release.Version{Major: 2, Minor: 6}.String())
}
