package opcli

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
)

// CurrentDesired reads every node's desired state now, keyed by node id.
func CurrentDesired(ctx context.Context, js jetstream.JetStream) (map[string]events.Desired, error) {
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	if err != nil {
		return nil, fmt.Errorf("read desired states: %w", err)
	}
	out := map[string]events.Desired{}
	err = fleethealth.EachEntry(ctx, kv, func(e jetstream.KeyValueEntry) {
		if d, err := events.DecodeDesired(e.Value(), nil, e.Key()); err == nil {
			out[e.Key()] = d
		}
	})
	return out, err
}
