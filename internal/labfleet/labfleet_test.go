package labfleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The agent suite that runs a lab fleet end to end lives in test/labfleet: it
// builds its fleets with the planner, a service this package must not import.

func TestAddresses(t *testing.T) {
	tests := []struct {
		n        int
		pbx, oml string
	}{
		{0, "127.1.1.2", "127.1.1.3"},
		{249, "127.1.250.2", "127.1.250.3"},
		{250, "127.2.1.2", "127.2.1.3"},
		{62_499, "127.250.250.2", "127.250.250.3"},
	}
	for _, tt := range tests {
		pbx, oml := Addresses(tt.n)
		assert.Equal(t, tt.pbx, pbx, "site %d", tt.n)
		assert.Equal(t, tt.oml, oml, "site %d", tt.n)
	}
}
