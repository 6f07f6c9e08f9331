package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// busHandles are the agent's JetStream handles, opened once per Run: each
// js.KeyValue lookup is a STREAM.INFO request, which 2,000 agents would
// otherwise send every status interval.
type busHandles struct {
	js      jetstream.JetStream
	desired jetstream.KeyValue
	status  jetstream.KeyValue
}

// Backoff of the agent's retries against NATS: from retryMin, doubling to
// retryMax, each delay jittered by ±20% so that 2,000 agents do not retry in
// lockstep after a hub restart.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
	// warnAfter is how many failures in a row of one operation are logged at
	// debug before the agent says so at warn, with the reason.
	warnAfter = 3
	// warnEvery bounds how often a failing operation repeats its warning.
	warnEvery = time.Minute
	// busOpTimeout bounds one read or put of a key and one publish.
	busOpTimeout = 5 * time.Second
)

// failureLog reports a repeating failure of one operation without flooding the
// log: debug for the first few, then a warning naming the count and the reason
// (at most once a minute), and one info line when it works again.
type failureLog struct {
	op       string
	count    int
	lastWarn time.Time
}

func (f *failureLog) fail(log *slog.Logger, err error) {
	f.count++
	if f.count < warnAfter {
		log.Debug(f.op+" failed; retrying", "failures", f.count, "err", err)
		return
	}
	if time.Since(f.lastWarn) >= warnEvery {
		f.lastWarn = time.Now()
		log.Warn(f.op+" keeps failing; retrying", "failures", f.count, "err", err)
	}
}

func (f *failureLog) ok(log *slog.Logger) {
	if f.count >= warnAfter {
		log.Info(f.op+" works again", "after_failures", f.count)
	}
	f.count, f.lastWarn = 0, time.Time{}
}

// openBus opens the JetStream handles, retrying with a jittered backoff until
// they open or ctx ends (then it returns ctx's error).
func (a *Agent) openBus(ctx context.Context) (*busHandles, error) {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream for %s: %w", a.node, err)
	}
	fl := failureLog{op: "open the desired and status buckets"}
	delay := retryMin
	for {
		h, err := tryOpen(ctx, js)
		if err == nil {
			fl.ok(a.log)
			return h, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fl.fail(a.log, err)
		if wait.Sleep(ctx, wait.Jitter(delay)) != nil {
			return nil, ctx.Err()
		}
		delay = min(2*delay, retryMax)
	}
}

func tryOpen(ctx context.Context, js jetstream.JetStream) (*busHandles, error) {
	octx, cancel := context.WithTimeout(ctx, busOpTimeout)
	defer cancel()
	d, err := js.KeyValue(octx, events.BucketDesired)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketDesired, err)
	}
	s, err := js.KeyValue(octx, events.BucketStatus)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketStatus, err)
	}
	return &busHandles{js: js, desired: d, status: s}, nil
}

// notifyDesired subscribes to the subject every put of the node's own desired
// key is published on and offers each put's value to a.puts (only the newest is
// kept). The value is the put itself: reading the key back at that moment could
// find the stream has not stored it yet (the subscription and the stream get
// the message at the same time). The agent needs no JetStream consumer, so a
// node's credentials allow none (a consumer's deliver subject could be any
// subject). A delete or purge of the key offers an empty put: read the key.
func (a *Agent) notifyDesired() (*nats.Subscription, error) {
	sub, err := a.nc.Subscribe(events.DesiredKeySubject(a.node), func(m *nats.Msg) {
		var data []byte
		if op := m.Header.Get(kvOperationHeader); op == "" || op == "PUT" {
			data = slices.Clone(m.Data)
		}
		a.offerPut(data)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", events.DesiredKeySubject(a.node), err)
	}
	return sub, nil
}

// kvOperationHeader marks a KV delete or purge (nats.go's jetstream KV).
const kvOperationHeader = "KV-Operation"

// offerPut puts data in a.puts, replacing a put not taken yet: only the newest
// desired state matters ("never a superseded revision").
func (a *Agent) offerPut(data []byte) {
	for {
		select {
		case a.puts <- data:
			return
		default:
			select {
			case <-a.puts:
			default:
			}
		}
	}
}

// resync reads the node's desired key and handles what it holds. It is level
// triggered: whatever a notification missed (a NATS restart, a WAN cut), the
// key's current value is the truth.
func (a *Agent) resync(ctx context.Context, h *busHandles, fl *failureLog) {
	gctx, cancel := context.WithTimeout(ctx, busOpTimeout)
	e, err := h.desired.Get(gctx, a.node)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		fl.ok(a.log)
		return // nothing desired yet
	case err != nil:
		if ctx.Err() == nil {
			fl.fail(a.log, err)
		}
		return
	}
	fl.ok(a.log)
	_, _ = a.handle(ctx, h, e.Value())
}
