// Package release reads release numbers: pbxfleet's own (what its NATS
// services report, which micro wants as plain semver) and OMniLeads' (which
// deployment kinds may drive it). One parser for both, so "v2.6.3",
// "release-2.6.3" and "2.6.3-dirty" mean the same release everywhere.
package release

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a release number; a missing patch level reads as 0.
type Version struct{ Major, Minor, Patch int }

// String is the plain semver form micro and operators expect: "2.6.3".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// versionRE takes an optional "release-" or "v" prefix, then major.minor and
// an optional patch; anything after ("-dirty", "+build", "-rc1") is ignored.
var versionRE = regexp.MustCompile(`^(?:release-|v)?(\d{1,9})\.(\d{1,9})(?:\.(\d{1,9}))?`)

// Parse reads s ("release-2.6.3", "1.33.2", "v2.4.0", "v0.1.0-5-gabc-dirty").
func Parse(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a release number (want e.g. 2.6.3, v2.6.3 or release-2.6.3)", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1]) // at most 9 digits: always an int
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}
