package events

import "testing"

// BenchmarkDecodeDesired: one desired state as an agent (and the orchestrator,
// and the page) reads it from the store, every check included.
func BenchmarkDecodeDesired(b *testing.B) {
	d := sampleDesired()
	data, _, err := Encode(SourceOrchestrator, d)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDesired(data, nil, d.Node); err != nil {
			b.Fatal(err)
		}
	}
}
