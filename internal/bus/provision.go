package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/wait"
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
	// MaxWatchers caps the consumers of the desired bucket; default 100,000 (the
	// value older versions set when every node agent watched its own key with a
	// consumer; agents now use none, and keeping it spares an update).
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

// Provision creates the buckets and the stream of docs/design.md#the-wire
// (pbxfleet_desired, pbxfleet_status, pbxfleet_rollouts and PBXFLEET_RESULTS)
// when they are missing, and updates one only when its shape differs from
// pbxfleet's. Running it twice changes nothing and sends no update: the
// orchestrator's key may create its four streams (a fresh store) but never
// update one (OrchestratorPermissions), so on an existing store it provisions
// with reads alone; a shape change (replicas, history) needs the operator's
// key. The status bucket and the results stream are created without roll-ups:
// a node allowed to put only its own status key could otherwise send
// Nats-Rollup: all and wipe every other node's status. A stream that allows
// them (an older store, or re-enabled by hand) is a shape difference, updated
// like any other.
func Provision(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig) error {
	for _, sc := range StreamConfigs(cfg) {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
}

// StreamConfigs returns the configurations Provision gives the four streams:
// the buckets' streams as jetstream makes a key-value bucket, with roll-ups off
// on the status bucket, and the results stream.
func StreamConfigs(cfg ProvisionConfig) []jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	desired := kvStream(events.BucketDesired, "pbxfleet desired state per node (<site>.<role>), written by the orchestrator",
		int64(min(cfg.DesiredHistory, 64)), 0, events.MaxEventBytes, cfg.Replicas)
	desired.MaxConsumers = cfg.MaxWatchers
	status := kvStream(events.BucketStatus, "pbxfleet node health and drift (<site>.<role>), written by each node",
		1, cfg.StatusTTL, events.MaxEventBytes, cfg.Replicas)
	status.AllowRollup = false
	rollouts := kvStream(events.BucketRollouts, "pbxfleet rollouts and the rollout lock, written by the orchestrator",
		5, 0, -1, cfg.Replicas)
	results := jetstream.StreamConfig{
		Name:              events.StreamResults,
		Description:       "pbxfleet apply results, one per node and revision",
		Subjects:          []string{events.ResultSubjects},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            cfg.ResultsMaxAge,
		MaxMsgSize:        events.MaxEventBytes,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Duplicates:        cfg.DuplicateWindow,
		Replicas:          cfg.Replicas,
	}
	return []jetstream.StreamConfig{desired, status, rollouts, results}
}

// kvStream is the stream jetstream.CreateKeyValue makes for a bucket (nats.go
// v1.55 prepareKeyValueConfig), so that js.KeyValue reads it as one.
func kvStream(bucket, desc string, history int64, ttl time.Duration, maxValue int32, replicas int) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if ttl > 0 && ttl < dup {
		dup = ttl
	}
	return jetstream.StreamConfig{
		Name:              kvStreamPrefix + bucket,
		Description:       desc,
		Subjects:          []string{kvSubjectPrefix + bucket + ".>"},
		MaxMsgsPerSubject: history,
		MaxBytes:          -1,
		MaxAge:            ttl,
		MaxMsgSize:        maxValue,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
	}
}

// ensureStream creates want when it is missing, and updates the stream to want
// when its shape differs (see shapeDiff). It returns an error naming the stream
// and, for an update, what differs.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("provision %s: create: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("provision %s: %w", want.Name, err)
	}
	diff := shapeDiff(s.CachedInfo().Config, want)
	if diff == "" {
		return nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return fmt.Errorf("provision %s: it differs from pbxfleet's shape (%s) and could not be updated "+
			"(the orchestrator's key may not update a stream: start serve once with the operator's key): %w", want.Name, diff, err)
	}
	return nil
}

// shapeDiff names the fields of have that differ from want among those pbxfleet
// sets (and the ones that could feed or drain the stream from elsewhere:
// mirror, sources, republish, subject transform, sealed); empty when none does.
func shapeDiff(have, want jetstream.StreamConfig) string {
	var d []string
	check := func(name string, same bool) {
		if !same {
			d = append(d, name)
		}
	}
	check("subjects", slices.Equal(have.Subjects, want.Subjects))
	check("description", have.Description == want.Description)
	check("max_msgs_per_subject", have.MaxMsgsPerSubject == want.MaxMsgsPerSubject)
	check("max_msgs", have.MaxMsgs == want.MaxMsgs)
	check("max_bytes", have.MaxBytes == want.MaxBytes)
	check("max_age", have.MaxAge == want.MaxAge)
	check("max_msg_size", have.MaxMsgSize == want.MaxMsgSize)
	check("max_consumers", have.MaxConsumers == want.MaxConsumers)
	check("replicas", have.Replicas == want.Replicas)
	check("duplicate_window", have.Duplicates == want.Duplicates)
	check("discard", have.Discard == want.Discard)
	check("allow_rollup_hdrs", have.AllowRollup == want.AllowRollup)
	check("deny_delete", have.DenyDelete == want.DenyDelete)
	check("deny_purge", have.DenyPurge == want.DenyPurge)
	check("allow_direct", have.AllowDirect == want.AllowDirect)
	check("mirror", have.Mirror == nil)
	check("sources", len(have.Sources) == 0)
	check("republish", have.RePublish == nil)
	check("subject_transform", have.SubjectTransform == nil)
	check("sealed", !have.Sealed)
	return strings.Join(d, ", ")
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
		if wait.Sleep(ctx, 200*time.Millisecond) != nil {
			return fmt.Errorf("wait for jetstream: %w", errors.Join(ctx.Err(), last))
		}
	}
}
