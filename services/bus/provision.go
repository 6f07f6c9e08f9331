package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
)

// ProvisionConfig sizes the buckets and streams. The zero value means the defaults.
type ProvisionConfig struct {
	// Replicas is the JetStream replication factor (1 on one server, 3 on a cluster).
	Replicas int
	// DesiredHistory is how many revisions of each desired key are kept; default 10.
	DesiredHistory int
	// StatusTTL is how long a status entry lives without a refresh; default 2m, so
	// a node that stopped reporting disappears from `pbxfleet status` as stale.
	StatusTTL time.Duration
	// ResultsMaxAge is how long results are kept; default 30 days.
	ResultsMaxAge time.Duration
	// DuplicateWindow is the Nats-Msg-Id deduplication window of the results; default 10m.
	DuplicateWindow time.Duration
	// MaxWatchers caps the consumers of the desired bucket; default 100,000. Every
	// node agent watches its own key with one consumer, and nats-server 2.15
	// otherwise caps a stream at 1,000 consumers: a fleet of 500 sites would fill it.
	MaxWatchers int
}

func (c ProvisionConfig) withDefaults() ProvisionConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DesiredHistory <= 0 {
		c.DesiredHistory = 10
	}
	if c.StatusTTL <= 0 {
		c.StatusTTL = 2 * time.Minute
	}
	if c.ResultsMaxAge <= 0 {
		c.ResultsMaxAge = 30 * 24 * time.Hour
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.MaxWatchers <= 0 {
		c.MaxWatchers = 100_000
	}
	return c
}

// Provision creates (or updates to the same shape) the buckets and the stream of
// docs/design.md#the-wire: pbxfleet_desired, pbxfleet_status, pbxfleet_rollouts and
// PBXFLEET_RESULTS. Running it twice changes nothing.
func Provision(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig) error {
	cfg = cfg.withDefaults()
	kvs := []jetstream.KeyValueConfig{
		{
			Bucket:       events.BucketDesired,
			Description:  "pbxfleet desired state per node (<site>.<role>), written by the orchestrator",
			History:      uint8(min(cfg.DesiredHistory, 64)),
			Replicas:     cfg.Replicas,
			MaxValueSize: events.MaxEventBytes,
		},
		{
			Bucket:       events.BucketStatus,
			Description:  "pbxfleet node health and drift (<site>.<role>), written by each node",
			History:      1,
			TTL:          cfg.StatusTTL,
			Replicas:     cfg.Replicas,
			MaxValueSize: events.MaxEventBytes,
		},
		{
			Bucket:      events.BucketRollouts,
			Description: "pbxfleet rollouts and the rollout lock, written by the orchestrator",
			History:     5,
			Replicas:    cfg.Replicas,
		},
	}
	for _, kc := range kvs {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("provision kv %s: %w", kc.Bucket, err)
		}
	}
	if err := setMaxConsumers(ctx, js, kvStreamPrefix+events.BucketDesired, cfg.MaxWatchers); err != nil {
		return err
	}
	sc := jetstream.StreamConfig{
		Name:        events.StreamResults,
		Description: "pbxfleet apply results, one per node and revision",
		Subjects:    []string{events.ResultSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.ResultsMaxAge,
		MaxMsgSize:  events.MaxEventBytes,
		Duplicates:  cfg.DuplicateWindow,
		Replicas:    cfg.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("provision stream %s: %w", sc.Name, err)
	}
	// Subject permissions cannot see headers: without this, a node allowed to put
	// only its own status key could send Nats-Rollup: all and wipe every other
	// node's status.
	return RestrictRollups(ctx, js)
}

// WaitForJetStream retries jetstream.AccountInfo until it answers or ctx ends, so a
// process started together with its server does not fail on the first try.
func WaitForJetStream(ctx context.Context, js jetstream.JetStream) error {
	var last error
	for {
		_, err := js.AccountInfo(ctx)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for jetstream: %w", errors.Join(ctx.Err(), last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func setMaxConsumers(ctx context.Context, js jetstream.JetStream, stream string, n int) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("provision %s: %w", stream, err)
	}
	sc := s.CachedInfo().Config
	if sc.MaxConsumers == n {
		return nil
	}
	sc.MaxConsumers = n
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("provision %s: max consumers %d: %w", stream, n, err)
	}
	return nil
}
