package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/bus/bustest"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
)

func TestInboxPrefix(t *testing.T) {
	tests := []struct{ site, role, want string }{
		{"bsas-1", "pbx", "_INBOX_bsas-1_pbx"},
		{"rosario_docker", "oml", "_INBOX_rosario_docker_oml"},
		{"we.ird>*", "pbx", "_INBOX_we_ird___pbx"},
	}
	for _, tt := range tests {
		t.Run(tt.site, func(t *testing.T) {
			got := natsclient.InboxPrefix(tt.site, tt.role)
			assert.Equal(t, tt.want, got)
			o := nats.GetDefaultOptions()
			assert.NoError(t, nats.CustomInboxPrefix(got)(&o), "a valid nats inbox prefix")
		})
	}
}

// TestNodeCannotTouchAnotherNode runs every way node a-1.pbx could reach the
// state of b-1.pbx (or its sibling a-1.oml) against the real server: each one is
// refused by the server, which names the subject.
func TestNodeCannotTouchAnotherNode(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx", "a-1.oml", "b-1.pbx")
	ctx := context.Background()
	orch, _ := s.Connect(t, "orchestrator")
	ojs, err := jetstream.New(orch)
	require.NoError(t, err)
	desired, err := ojs.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	for _, id := range []string{"a-1.pbx", "a-1.oml", "b-1.pbx"} {
		_, err := desired.PutString(ctx, id, "desired of "+id)
		require.NoError(t, err)
	}

	const dk = "$KV.pbxfleet_desired."
	tests := []struct {
		name    string
		subject string // the subject the server refuses
		op      func(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error
	}{
		{"kv get another key", "$JS.API.DIRECT.GET.KV_pbxfleet_desired." + dk + "b-1.pbx", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, "b-1.pbx")
			return err
		}},
		{"kv get the sibling's key", "$JS.API.DIRECT.GET.KV_pbxfleet_desired." + dk + "a-1.oml", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, "a-1.oml")
			return err
		}},
		{"kv get by sequence", "$JS.API.DIRECT.GET.KV_pbxfleet_desired", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.GetRevision(ctx, "b-1.pbx", 3)
			return err
		}},
		{"stream msg get", "$JS.API.STREAM.MSG.GET.KV_pbxfleet_desired", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_pbxfleet_desired", []byte(`{"seq":3}`))
			return err
		}},
		{"kv watch another key", "$JS.API.CONSUMER.CREATE.KV_pbxfleet_desired.", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.Watch(ctx, "b-1.pbx")
			return err
		}},
		{"kv watch its own key (a consumer delivers anywhere its creator says)", "$JS.API.CONSUMER.CREATE.KV_pbxfleet_desired.", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.Watch(ctx, "a-1.pbx")
			return err
		}},
		{"kv watch every key", "$JS.API.CONSUMER.CREATE.KV_pbxfleet_desired.", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.WatchAll(ctx)
			return err
		}},
		{"follow another node's key", dk + "b-1.pbx", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, events.DesiredKeySubject("b-1.pbx"))
		}},
		{"follow every key", dk + ">", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, dk+">")
		}},
		{"put its own desired state", dk + "a-1.pbx", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketDesired)
			if err != nil {
				return err
			}
			_, err = kv.PutString(ctx, "a-1.pbx", "self-served")
			return err
		}},
		{"publish another node's result", "pbxfleet.result.b-1.pbx", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, events.ResultSubject("b-1", "pbx"), []byte("{}"))
			return err
		}},
		{"put another node's status", "$KV.pbxfleet_status.b-1.pbx", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketStatus)
			if err != nil {
				return err
			}
			_, err = kv.PutString(ctx, "b-1.pbx", "healthy, trust me")
			return err
		}},
		{"serve another node's check", "pbxfleet.node.b-1.pbx.check", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, "pbxfleet.node.b-1.pbx.check")
		}},
		{"serve every node's endpoints", "pbxfleet.node.>", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, "pbxfleet.node.>")
		}},
		{"request another node's check", "pbxfleet.node.b-1.pbx.check", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, events.CheckSubject("b-1", "pbx"), nil)
			return err
		}},
		{"read the default inboxes", "_INBOX.>", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, "_INBOX.>")
		}},
		{"read another node's inbox", "_INBOX_b-1_pbx.>", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, "_INBOX_b-1_pbx.>")
		}},
		{"read every result live", "pbxfleet.result.>", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribeFor(ctx, nc, events.ResultSubjects)
		}},
		{"delete the results stream", "$JS.API.STREAM.DELETE.PBXFLEET_RESULTS", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, events.StreamResults)
		}},
		{"push consumer on its own key delivering to the orchestrator", "$JS.API.CONSUMER.CREATE.KV_pbxfleet_desired.", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE.KV_pbxfleet_desired.evil."+dk+"a-1.pbx",
				[]byte(`{"stream_name":"KV_pbxfleet_desired","config":{"name":"evil","deliver_subject":"pbxfleet.rollout.abort","deliver_group":"q","headers_only":true,"filter_subject":"`+dk+`a-1.pbx","ack_policy":"none"}}`))
			return err
		}},
		{"durable push consumer delivering to another node's check", "$JS.API.CONSUMER.DURABLE.CREATE.KV_pbxfleet_desired.evil", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.DURABLE.CREATE.KV_pbxfleet_desired.evil",
				[]byte(`{"stream_name":"KV_pbxfleet_desired","config":{"durable_name":"evil","deliver_subject":"pbxfleet.node.b-1.pbx.check","filter_subject":"`+dk+`a-1.pbx","ack_policy":"none"}}`))
			return err
		}},
		{"consumer on the results", "$JS.API.CONSUMER.CREATE.PBXFLEET_RESULTS", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE.PBXFLEET_RESULTS", []byte(`{"stream_name":"PBXFLEET_RESULTS","config":{"ack_policy":"none"}}`))
			return err
		}},
		{"re-enable roll-ups on the status bucket", "$JS.API.STREAM.UPDATE.KV_pbxfleet_status", func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.UPDATE.KV_pbxfleet_status", []byte(`{"name":"KV_pbxfleet_status","allow_rollup_hdrs":true}`))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, v := s.Connect(t, "a-1.pbx")
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			require.Error(t, tt.op(ctx, nc, js), "the server must refuse it")
			v.RequireOn(t, tt.subject)
		})
	}

	// What a node may do, on its own key, works on the same server.
	t.Run("its own", func(t *testing.T) {
		t.Parallel()
		nc, v := s.Connect(t, "a-1.pbx")
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		require.NoError(t, err)
		kv, err := js.KeyValue(ctx, events.BucketDesired)
		require.NoError(t, err)
		e, err := kv.Get(ctx, "a-1.pbx")
		require.NoError(t, err)
		assert.Equal(t, "desired of a-1.pbx", string(e.Value()))
		// A put of its own key reaches its subscription to the key's subject.
		puts, err := nc.SubscribeSync(events.DesiredKeySubject("a-1.pbx"))
		require.NoError(t, err)
		require.NoError(t, nc.FlushWithContext(ctx))
		_, err = desired.PutString(ctx, "a-1.pbx", "desired of a-1.pbx, again")
		require.NoError(t, err)
		m, err := puts.NextMsgWithContext(ctx)
		require.NoError(t, err, "no notification of a put of its own key")
		assert.Equal(t, "desired of a-1.pbx, again", string(m.Data))
		require.NoError(t, puts.Unsubscribe())
		_, err = js.Publish(ctx, events.ResultSubject("a-1", "pbx"), []byte("{}"))
		require.NoError(t, err)
		st, err := js.KeyValue(ctx, events.BucketStatus)
		require.NoError(t, err)
		_, err = st.PutString(ctx, "a-1.pbx", "{}")
		require.NoError(t, err)
		require.NoError(t, subscribeFor(ctx, nc, "pbxfleet.node.a-1.pbx.check"))
		require.NoError(t, nc.Flush())
		assert.Empty(t, v.All())
	})
}

// subscribeFor subscribes to subject and makes sure the server has processed
// the subscription (a refusal arrives as an async permission violation).
func subscribeFor(ctx context.Context, nc *nats.Conn, subject string) error {
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.FlushWithContext(ctx); err != nil {
		return err
	}
	// The server answers the flush's PING after refusing the SUB, so a refusal
	// has been read by now.
	if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
		return err
	}
	return nil
}

// TestRollupsAreRestricted: permissions cannot look at headers, so a node's put
// to its own status key (or result subject) with "Nats-Rollup: all" would
// empty the whole stream; Provision (run by the test server) creates both
// streams nodes write to without roll-ups, so the put is refused and the
// other node's entry survives. (A store whose roll-ups were turned back on is
// repaired by Provision: TestOrchestratorProvisionsAStoreOfAnOlderVersion.)
func TestRollupsAreRestricted(t *testing.T) {
	tests := []struct {
		name    string
		subject string
	}{
		{"status", "$KV.pbxfleet_status.a-1.pbx"},
		{"results", "pbxfleet.result.a-1.pbx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bustest.StartAuthServer(t, "a-1.pbx", "b-1.pbx")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			op, _ := s.Connect(t, "operator")
			ojs, err := jetstream.New(op)
			require.NoError(t, err)
			b, _ := s.Connect(t, "b-1.pbx")
			bjs, err := jetstream.New(b)
			require.NoError(t, err)
			status, err := bjs.KeyValue(ctx, events.BucketStatus)
			require.NoError(t, err)
			_, err = status.PutString(ctx, "b-1.pbx", "b's status")
			require.NoError(t, err)
			_, err = bjs.Publish(ctx, events.ResultSubject("b-1", "pbx"), []byte("b's result"))
			require.NoError(t, err)

			a, _ := s.Connect(t, "a-1.pbx")
			ajs, err := jetstream.New(a)
			require.NoError(t, err)
			msg := nats.NewMsg(tt.subject)
			msg.Header.Set("Nats-Rollup", "all")
			_, err = ajs.PublishMsg(ctx, msg)
			require.ErrorContains(t, err, "rollup")
			ostatus, err := ojs.KeyValue(ctx, events.BucketStatus)
			require.NoError(t, err)
			_, err = ostatus.Get(ctx, "b-1.pbx")
			require.NoError(t, err, "b-1.pbx's status survives")
			results, err := ojs.Stream(ctx, events.StreamResults)
			require.NoError(t, err)
			_, err = results.GetLastMsgForSubject(ctx, events.ResultSubject("b-1", "pbx"))
			require.NoError(t, err, "b-1.pbx's result survives")
		})
	}
}

func TestNodeCannotReadAnotherClientsReplies(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx")
	spy, v := s.Connect(t, "a-1.pbx")
	op, _ := s.Connect(t, "operator")
	sub, err := spy.SubscribeSync("_INBOX.>")
	require.NoError(t, err)
	require.NoError(t, spy.Flush())
	v.RequireOn(t, "_INBOX.>")

	// The operator's replies travel on _INBOX.<...>: the node sees none of them.
	require.NoError(t, op.Publish(op.NewRespInbox(), []byte("a reply")))
	require.NoError(t, op.Flush())
	_, err = sub.NextMsg(300 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout)
}

func TestUnknownKeyIsRefused(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx")
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	stranger := filepath.Join(t.TempDir(), "stranger.nk")
	require.NoError(t, os.WriteFile(stranger, seed, 0o600))

	tests := []struct {
		name string
		cfg  natsclient.Config
	}{
		{"unknown nkey", natsclient.Config{NKeySeedFile: stranger}},
		{"no credentials", natsclient.Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tt.cfg.URL = s.ClientURL()
			nc, err := natsclient.Connect(ctx, tt.cfg)
			if nc != nil {
				nc.Close()
			}
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), "authorization violation")
		})
	}
}

func TestOrchestratorMayNotSpeakForNodes(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx")
	tests := []struct {
		name, subject string
		op            func(ctx context.Context, js jetstream.JetStream) error
	}{
		{"publish a node's result", "pbxfleet.result.a-1.pbx", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, events.ResultSubject("a-1", "pbx"), []byte("{}"))
			return err
		}},
		{"put a node's status", "$KV.pbxfleet_status.a-1.pbx", func(ctx context.Context, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, events.BucketStatus)
			if err != nil {
				return err
			}
			_, err = kv.PutString(ctx, "a-1.pbx", "{}")
			return err
		}},
		{"delete the results stream", "$JS.API.STREAM.DELETE.PBXFLEET_RESULTS", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, events.StreamResults)
		}},
		{"purge the results stream", "$JS.API.STREAM.PURGE.PBXFLEET_RESULTS", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, events.StreamResults)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"purge the desired bucket", "$JS.API.STREAM.PURGE.KV_pbxfleet_desired", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "KV_"+events.BucketDesired)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"purge the status bucket", "$JS.API.STREAM.PURGE.KV_pbxfleet_status", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "KV_"+events.BucketStatus)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"shrink the results to one message", "$JS.API.STREAM.UPDATE.PBXFLEET_RESULTS", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, events.StreamResults)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.MaxMsgs = 1
			_, err = js.UpdateStream(ctx, cfg)
			return err
		}},
		{"re-enable roll-ups on the status bucket", "$JS.API.STREAM.UPDATE.KV_pbxfleet_status", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "KV_"+events.BucketStatus)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.AllowRollup = true
			_, err = js.UpdateStream(ctx, cfg)
			return err
		}},
		{"republish the desired bucket into the results", "$JS.API.STREAM.UPDATE.KV_pbxfleet_desired", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "KV_"+events.BucketDesired)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.RePublish = &jetstream.RePublish{Source: "$KV.pbxfleet_desired.>", Destination: "pbxfleet.result.x.pbx"}
			_, err = js.UpdateStream(ctx, cfg)
			return err
		}},
		{"create a stream sourced into the results", "$JS.API.STREAM.CREATE.FORGE", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FORGE", Subjects: []string{"forge.>"}})
			return err
		}},
		{"re-create the status bucket with roll-ups", "", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "KV_"+events.BucketStatus)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.AllowRollup = true
			_, err = js.CreateStream(ctx, cfg)
			return err
		}},
		{"delete a result", "$JS.API.STREAM.MSG.DELETE.PBXFLEET_RESULTS", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, events.StreamResults)
			if err != nil {
				return err
			}
			return s.DeleteMsg(ctx, 1)
		}},
		{"a consumer on another stream", "$JS.API.CONSUMER.CREATE.OTHER", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Conn().RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE.OTHER", []byte(`{"stream_name":"OTHER","config":{"ack_policy":"none"}}`))
			return err
		}},
		{"purge the account", "$JS.API.ACCOUNT.PURGE", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Conn().RequestWithContext(ctx, "$JS.API.ACCOUNT.PURGE.$G", nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, v := s.Connect(t, "orchestrator")
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			require.Error(t, tt.op(ctx, js))
			if tt.subject != "" { // else the server itself refuses
				v.RequireOn(t, tt.subject)
			}
		})
	}
	// None of it changed the status bucket: a node's roll-up is still refused.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, _ := s.Connect(t, "a-1.pbx")
	ajs, err := jetstream.New(a)
	require.NoError(t, err)
	msg := nats.NewMsg("$KV.pbxfleet_status.a-1.pbx")
	msg.Header.Set("Nats-Rollup", "all")
	_, err = ajs.PublishMsg(ctx, msg)
	require.ErrorContains(t, err, "rollup")
}

// TestOrchestratorCleansItsRolloutsBucket: what the orchestrator's retention
// does (purge a key, drop the delete markers) is allowed on its own bucket.
func TestOrchestratorCleansItsRolloutsBucket(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, _ := s.Connect(t, "orchestrator")
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, events.BucketRollouts)
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "plan.r1.a-1", "{}")
	require.NoError(t, err)
	require.NoError(t, kv.Purge(ctx, "plan.r1.a-1"))
	require.NoError(t, kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1)))
	_, err = kv.Get(ctx, "plan.r1.a-1")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
}

// TestOrchestratorProvisionsWithoutUpdates: the orchestrator's key creates the
// four streams on an empty store and provisions an existing one with reads
// alone; a status bucket whose roll-ups were turned on again (by hand, or an
// older version) is refused to it, naming what differs, and repaired by the
// operator's key.
func TestOrchestratorProvisionsWithoutUpdates(t *testing.T) {
	s := bustest.StartBareAuthServer(t, "a-1.pbx")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	orch, v := s.Connect(t, "orchestrator")
	ojs, err := jetstream.New(orch)
	require.NoError(t, err)
	require.NoError(t, bus.Provision(ctx, ojs, bus.ProvisionConfig{}), "an empty store")
	require.NoError(t, bus.Provision(ctx, ojs, bus.ProvisionConfig{}), "an existing store")
	require.NoError(t, orch.Flush())
	assert.Empty(t, v.All())
	for _, name := range bus.Streams() {
		st, err := ojs.Stream(ctx, name)
		require.NoError(t, err)
		cfg := st.CachedInfo().Config
		assert.Equal(t, name == "KV_"+events.BucketDesired || name == "KV_"+events.BucketRollouts, cfg.AllowRollup, "%s roll-ups", name)
	}
	_, err = ojs.KeyValue(ctx, events.BucketStatus)
	require.NoError(t, err, "the status stream is a key-value bucket")

	op, _ := s.Connect(t, "operator")
	opjs, err := jetstream.New(op)
	require.NoError(t, err)
	st, err := opjs.Stream(ctx, "KV_"+events.BucketStatus)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.AllowRollup = true
	_, err = opjs.UpdateStream(ctx, cfg)
	require.NoError(t, err)

	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	err = bus.Provision(pctx, ojs, bus.ProvisionConfig{})
	require.ErrorContains(t, err, "KV_pbxfleet_status")
	require.ErrorContains(t, err, "allow_rollup_hdrs")
	v.RequireOn(t, "$JS.API.STREAM.UPDATE.KV_pbxfleet_status")

	require.NoError(t, bus.Provision(ctx, opjs, bus.ProvisionConfig{}), "the operator repairs it")
	st, err = opjs.Stream(ctx, "KV_"+events.BucketStatus)
	require.NoError(t, err)
	assert.False(t, st.CachedInfo().Config.AllowRollup)
}

// TestOrchestratorProvisionsAStoreOfAnOlderVersion: a store provisioned the
// way earlier versions did (jetstream's CreateOrUpdateKeyValue, then roll-ups
// turned off and the desired bucket's consumer cap raised) already has
// pbxfleet's shape: the orchestrator's key provisions it with reads alone.
func TestOrchestratorProvisionsAStoreOfAnOlderVersion(t *testing.T) {
	s := bustest.StartBareAuthServer(t, "a-1.pbx")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, _ := s.Connect(t, "operator")
	js, err := jetstream.New(op)
	require.NoError(t, err)
	for _, kc := range []jetstream.KeyValueConfig{
		{Bucket: events.BucketDesired, Description: "pbxfleet desired state per node (<site>.<role>), written by the orchestrator",
			History: 10, Replicas: 1, MaxValueSize: events.MaxEventBytes},
		{Bucket: events.BucketStatus, Description: "pbxfleet node health and drift (<site>.<role>), written by each node",
			History: 1, TTL: 2 * time.Minute, Replicas: 1, MaxValueSize: events.MaxEventBytes},
		{Bucket: events.BucketRollouts, Description: "pbxfleet rollouts and the rollout lock, written by the orchestrator",
			History: 5, Replicas: 1},
	} {
		_, err := js.CreateOrUpdateKeyValue(ctx, kc)
		require.NoError(t, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: events.StreamResults, Description: "pbxfleet apply results, one per node and revision",
		Subjects: []string{events.ResultSubjects}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: 30 * 24 * time.Hour, MaxMsgSize: events.MaxEventBytes, Duplicates: 10 * time.Minute, Replicas: 1,
	})
	require.NoError(t, err)
	st, err := js.Stream(ctx, "KV_"+events.BucketDesired)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.MaxConsumers = 100_000
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	// The status bucket as jetstream creates it allows roll-ups; the older
	// version had them turned off (the results stream never allowed them).
	st, err = js.Stream(ctx, "KV_"+events.BucketStatus)
	require.NoError(t, err)
	cfg = st.CachedInfo().Config
	cfg.AllowRollup = false
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)

	orch, v := s.Connect(t, "orchestrator")
	ojs, err := jetstream.New(orch)
	require.NoError(t, err)
	require.NoError(t, bus.Provision(ctx, ojs, bus.ProvisionConfig{}))
	require.NoError(t, orch.Flush())
	assert.Empty(t, v.All(), "no update was needed")
}

// TestOrchestratorConsumersCannotForgeResults: the orchestrator's key may
// create push consumers on its streams (its key-value watches are push
// consumers) and the server does not check where one delivers. A consumer
// delivering to a result subject delivers only where someone listens, and the
// results stream then stores the delivery as a result. The orchestrator's key
// may not listen there itself (no subscribe permission on result subjects), so
// alone it cannot forge a result: its consumer stays unbound. With another
// client listening on that subject (an operator's `nats sub`), the delivery is
// stored: a known limit, said in the README's security section.
func TestOrchestratorConsumersCannotForgeResults(t *testing.T) {
	s := bustest.StartAuthServer(t, "a-1.pbx")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	orch, v := s.Connect(t, "orchestrator")
	js, err := jetstream.New(orch)
	require.NoError(t, err)
	subject := events.ResultSubject("a-1", "pbx")
	forge, err := js.CreateOrUpdateConsumer(ctx, "KV_"+events.BucketRollouts, jetstream.ConsumerConfig{
		Name: "forge", DeliverSubject: subject, AckPolicy: jetstream.AckNonePolicy,
	})
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, events.BucketRollouts)
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "forged", `{"outcome":"converged"}`)
	require.NoError(t, err)

	// The orchestrator's own listener is refused, so nothing binds the consumer.
	_, err = orch.SubscribeSync(subject)
	require.NoError(t, err)
	require.NoError(t, orch.Flush())
	require.Eventually(t, func() bool { return len(v.All()) > 0 }, 5*time.Second, 10*time.Millisecond,
		"the server refuses the orchestrator's subscription to a result subject")
	assert.Contains(t, strings.Join(v.All(), "\n"), "Subscription to \""+subject+"\"")
	info, err := forge.Info(ctx)
	require.NoError(t, err)
	assert.False(t, info.PushBound, "no one listens: the consumer is not bound")
	assert.Zero(t, info.Delivered.Consumer, "so it delivered nothing")
	assert.Equal(t, uint64(1), info.NumPending, "the entry waits for a listener")
	results, err := js.Stream(ctx, events.StreamResults)
	require.NoError(t, err)
	rinfo, err := results.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, rinfo.State.Msgs, "no result was forged")

	// The known limit: another client listening binds it, and the delivery is
	// stored. When this fails, the limit is gone: update the README.
	op, _ := s.Connect(t, "operator")
	listener, err := op.SubscribeSync(subject)
	require.NoError(t, err)
	_, err = listener.NextMsg(5 * time.Second)
	require.NoError(t, err, "with a listener the consumer delivers")
	require.Eventually(t, func() bool {
		rinfo, err := results.Info(ctx)
		return err == nil && rinfo.State.Msgs == 1
	}, 5*time.Second, 10*time.Millisecond, "known limit: the delivery is stored as a result")
}
