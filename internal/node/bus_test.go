package node

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pbxfleet/pbxfleet/internal/wait"
	"github.com/stretchr/testify/assert"
)

// TestFailureLogSaysSo: a failing operation is logged at debug for the first
// few failures, then at warn with the count and the reason (at most once a
// minute), and once at info when it works again.
func TestFailureLogSaysSo(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fl := failureLog{op: "read the desired key"}
	boom := errors.New("nats: no responders available for request")
	for range warnAfter - 1 {
		fl.fail(log, boom)
	}
	assert.NotContains(t, buf.String(), "level=WARN", "not yet")
	fl.fail(log, boom)
	assert.Contains(t, buf.String(), `level=WARN msg="read the desired key keeps failing; retrying" failures=3 err="nats: no responders`)
	fl.fail(log, boom)
	assert.Equal(t, 1, strings.Count(buf.String(), "level=WARN"), "at most once a minute")
	fl.lastWarn = time.Now().Add(-2 * warnEvery)
	fl.fail(log, boom)
	assert.Equal(t, 2, strings.Count(buf.String(), "level=WARN"))
	fl.ok(log)
	assert.Contains(t, buf.String(), `level=INFO msg="read the desired key works again" after_failures=5`)
}

func TestJitterStaysWithin20Percent(t *testing.T) {
	seen := map[bool]bool{}
	for range 1000 {
		d := wait.Jitter(10 * time.Second)
		assert.GreaterOrEqual(t, d, 8*time.Second)
		assert.LessOrEqual(t, d, 12*time.Second)
		seen[d > 10*time.Second] = true
	}
	assert.Len(t, seen, 2, "both sides of the period")
}
