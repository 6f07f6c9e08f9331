package opcli

import (
	"fmt"

	"github.com/pbxfleet/pbxfleet/services/planner"
)

// ProblemLine formats a problem the way compilers do, so editors can jump to it.
func ProblemLine(file string, p planner.Problem) string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, p.Line, p)
	}
	return fmt.Sprintf("%s: %s", file, p)
}
