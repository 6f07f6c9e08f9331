package lab

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestCloseReleasesGoroutines runs calls in both directions, closes both hosts and
// checks every goroutine they started is gone. It is not parallel: it counts the
// process's goroutines.
func TestCloseReleasesGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		p := startPairNoCleanup(t, site{pbxAddr: "127.0.30.2", omlAddr: "127.0.30.3", omlExtraDialplan: didDialplan})
		qualified(t, p, "omnileads", "issabel")
		assert.Equal(t, "CHANUNAVAIL:1", probe(t, p.pbx, "99999"))
		assert.Equal(t, "CHANUNAVAIL:1", probe(t, p.oml, "77777"))
		assert.Equal(t, "ANSWER:16", probe(t, p.pbx, "098098"))
		// A call still ringing when the host closes must not hold Close.
		rx(t, p.oml, "channel originate Local/55555@pbxfleet-probe application Wait 1")
		p.pbx.SetFault(FaultSIPDropped)
		assert.NoError(t, p.pbx.Close())
		assert.NoError(t, p.oml.Close())
	}()
	deadline := time.Now().Add(pollBound)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
