package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
)

// observed is one result read from PBXFLEET_RESULTS and its stream sequence.
type observed struct {
	seq uint64
	res events.Result
}

// feed reads PBXFLEET_RESULTS from a sequence on with an ordered (ephemeral,
// flow-controlled, self-healing) consumer and buffers the decoded results until
// the driver takes them. Results of other rollouts are filtered by the driver,
// not here, so the feed's position is simply the last stream sequence read.
type feed struct {
	start  uint64
	it     jetstream.MessagesContext
	notify chan struct{}
	done   chan struct{}

	mu   sync.Mutex
	buf  []observed
	last uint64
}

// openFeed starts reading results at stream sequence start (at least 1).
func (e *Engine) openFeed(ctx context.Context, start uint64) (*feed, error) {
	start = max(start, 1)
	cons, err := e.js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubjects},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, fmt.Errorf("read %s from %d: %w", events.StreamResults, start, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read %s from %d: %w", events.StreamResults, start, err)
	}
	f := &feed{start: start, it: it, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go f.loop(e.log)
	return f, nil
}

func (f *feed) loop(log *slog.Logger) {
	defer close(f.done)
	for {
		m, err := f.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// The ordered consumer recreates itself after a server restart;
			// anything else is worth a line and a short pause.
			log.Debug("results feed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		res, derr := events.DecodeResult(m.Data(), m.Headers(), m.Subject())
		f.mu.Lock()
		f.last = max(f.last, meta.Sequence.Stream)
		if derr == nil {
			f.buf = append(f.buf, observed{seq: meta.Sequence.Stream, res: res})
		}
		f.mu.Unlock()
		if derr != nil {
			log.Debug("ignoring an unreadable result", "subject", m.Subject(), "seq", meta.Sequence.Stream, "err", derr)
		}
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}
}

// take returns the results read since the last take.
func (f *feed) take() []observed {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.buf
	f.buf = nil
	return out
}

func (f *feed) lastSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// catchUp waits until the feed has read every result the stream holds now, so
// that a deadline is never declared over a result that is already stored.
func (f *feed) catchUp(ctx context.Context, results jetstream.Stream) error {
	info, err := results.Info(ctx)
	if err != nil {
		return fmt.Errorf("catch up with %s: %w", events.StreamResults, err)
	}
	target := info.State.LastSeq
	if target < f.start {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for f.lastSeq() < target {
		select {
		case <-f.notify:
		case <-ctx.Done():
			return fmt.Errorf("catch up with %s at %d (read %d): %w", events.StreamResults, target, f.lastSeq(), ctx.Err())
		}
	}
	return nil
}

// close stops the consumer and waits for the reader to end.
func (f *feed) close() {
	f.it.Stop()
	<-f.done
}
