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

	log   *slog.Logger
	mu    sync.Mutex
	buf   []observed
	last  uint64
	stuck uint64 // f.last when heal last found the feed behind the stream; 0: it was not
	// consumed is the last stream sequence the consumer itself delivered
	// (fill may have taken it first), for tests and diagnostics.
	consumed uint64
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
	f := &feed{start: start, it: it, notify: make(chan struct{}, 1), done: make(chan struct{}), log: e.log}
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
		f.add(log, meta.Sequence.Stream, m.Subject(), m.Data(), m.Headers(), true)
	}
}

// add keeps the result at stream sequence seq unless the feed has read that
// far already: the consumer and fill may both deliver it, and each result is
// taken once. byConsumer says the consumer delivered it (else fill read it).
func (f *feed) add(log *slog.Logger, seq uint64, subject string, data []byte, header map[string][]string, byConsumer bool) {
	res, derr := events.DecodeResult(data, header, subject)
	f.mu.Lock()
	if byConsumer {
		f.consumed = seq
	}
	if seq <= f.last {
		f.mu.Unlock()
		return
	}
	f.last = seq
	if derr == nil {
		f.buf = append(f.buf, observed{seq: seq, res: res})
	}
	f.mu.Unlock()
	if derr != nil {
		log.Debug("ignoring an unreadable result", "subject", subject, "seq", seq, "err", derr)
	}
	select {
	case f.notify <- struct{}{}:
	default:
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
// that a deadline is never declared over a result that is already stored. When
// the consumer does not get there within consumerGrace, it reads the rest by
// sequence (fill).
func (f *feed) catchUp(ctx context.Context, results jetstream.Stream) error {
	info, err := results.Info(ctx)
	if err != nil {
		return fmt.Errorf("catch up with %s: %w", events.StreamResults, err)
	}
	target := info.State.LastSeq
	if target < f.start {
		return nil
	}
	grace, cancel := context.WithTimeout(ctx, consumerGrace)
	defer cancel()
	for f.lastSeq() < target {
		select {
		case <-f.notify:
		case <-grace.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("catch up with %s at %d (read %d): %w", events.StreamResults, target, f.lastSeq(), ctx.Err())
			}
			return f.fill(ctx, results, target)
		}
	}
	return nil
}

// consumerGrace is how long catchUp and heal let the ordered consumer deliver
// what the stream holds before reading it by sequence. The consumer stalls
// after a JetStream leader change until it notices missed heartbeats and is
// re-created (seconds, once about a minute under load).
const consumerGrace = 2 * time.Second

// heal is called now and then while the driver waits: when the feed is behind
// the stream at the same position as the previous call (the consumer
// delivered nothing in between), it reads the rest by sequence. It returns
// whether it read anything.
func (f *feed) heal(ctx context.Context, results jetstream.Stream) (bool, error) {
	info, err := results.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", events.StreamResults, err)
	}
	target, last := info.State.LastSeq, f.lastSeq()
	if target <= last || target < f.start {
		f.stuck = 0
		return false, nil
	}
	if f.stuck != last {
		f.stuck = last // behind: give the consumer until the next call
		return false, nil
	}
	f.log.Warn("results feed stalled; reading results by sequence", "read", last, "stored", target)
	if err := f.fill(ctx, results, target); err != nil {
		return false, err
	}
	f.stuck = 0
	return f.lastSeq() > last, nil
}

// fill reads the stream's messages after the feed's position up to target
// directly by sequence (a deleted one is skipped).
func (f *feed) fill(ctx context.Context, results jetstream.Stream, target uint64) error {
	for seq := max(f.lastSeq()+1, f.start); seq <= target; seq++ {
		m, err := results.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			f.mu.Lock()
			f.last = max(f.last, seq)
			f.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s message %d: %w", events.StreamResults, seq, err)
		}
		f.add(f.log, seq, m.Subject, m.Data, m.Header, false)
	}
	return nil
}

// close stops the consumer and waits for the reader to end.
func (f *feed) close() {
	f.it.Stop()
	<-f.done
}
