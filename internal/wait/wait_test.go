package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/wait"
)

func TestSleep(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"time passes", context.Background(), time.Millisecond, nil},
		{"nothing to wait", context.Background(), 0, nil},
		{"context already ended", ended, time.Hour, context.Canceled},
		{"context ended, nothing to wait", ended, 0, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, wait.Sleep(tt.ctx, tt.d), tt.want)
		})
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wait.Sleep(ctx, time.Hour) }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestJitterStaysWithinTwentyPercent(t *testing.T) {
	const d = time.Second
	seen := map[bool]int{}
	for range 1000 {
		j := wait.Jitter(d)
		assert.GreaterOrEqual(t, j, 800*time.Millisecond)
		assert.LessOrEqual(t, j, 1200*time.Millisecond)
		seen[j < d]++
	}
	assert.Positive(t, seen[true], "some below d")
	assert.Positive(t, seen[false], "some above d")
}
