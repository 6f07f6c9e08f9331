// Package wait holds the two timing helpers every retrying loop in pbxfleet
// uses: a sleep that ends with its context, and the jitter that keeps many
// agents (or one orchestrator's many sites) from retrying in step.
package wait

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits d or until ctx ends, whichever is first. It returns ctx's error
// when ctx ended first (or had already ended), nil when d passed.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Jitter spreads d by ±20%, so that a thousand agents restarted together do
// not come back to the same server (or the same PBX) in the same instant.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}
