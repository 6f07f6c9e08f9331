package planner

import (
	"testing"

	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
	"github.com/stretchr/testify/assert"
)

func TestWeakness(t *testing.T) {
	tests := []struct {
		secret string
		weak   string // a phrase of the reason, "" for a strong secret
	}{
		{"omnileads", "well-known"},
		{"issabelOML", "well-known"}, // the seed's secret, any case
		{"ISSABELOML", "well-known"},
		{"1234567890", "well-known"},
		{"Xy7-kP2.q", "shorter than 12"},
		{"aaaaaaaaaaaaaaaa", "repeated"},
		{"Zq8-Lw3.Vn7+Tk2", ""},
		{"correct.horse.battery", ""},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			got := secretpolicy.Weakness(tt.secret)
			if tt.weak == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, tt.weak)
			assert.NotContains(t, got, tt.secret, "the reason never repeats the secret")
		})
	}
}
