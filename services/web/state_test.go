package web

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNaturalOrder(t *testing.T) {
	names := []string{"b-10", "b-1000", "b-2", "a-1", "b-1", "b-100", "b-2x", "b"}
	slices.SortFunc(names, naturalCompare)
	assert.Equal(t, []string{"a-1", "b", "b-1", "b-2", "b-2x", "b-10", "b-100", "b-1000"}, names)
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"  Secret       : <Set>":          "  Secret       : <Set>",
		"  MD5Secret    : <Not set>":      "  MD5Secret    : <Not set>",
		"    password           : s3cr3t": "    password           : <hidden>",
		"secret=s3cr3t":                   "secret=<hidden>",
		" md5_cred => abc":                " md5_cred => <hidden>",
		"  Status       : OK (1 ms)":      "  Status       : OK (1 ms)",
		"Value: CONGESTION:21":            "Value: CONGESTION:21",
	} {
		assert.Equal(t, want, scrub(in), in)
	}
}
