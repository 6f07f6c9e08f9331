package lab

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// TestCloseReleasesGoroutines runs calls in both directions, closes both hosts and
// checks every goroutine they started is gone. goleak compares with the
// goroutines that ran before (IgnoreCurrent), so the parallel tests of this
// package running meanwhile are not counted; it retries until its deadline.
func TestCloseReleasesGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
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
	goleak.VerifyNone(t, ignore)
}
