package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// TestCheckRequestIsStrict: the check endpoint runs only for {"probe":true} or
// {"probe":false}; an empty body (what a headers-only delivery carries) and
// anything else is refused with 400 and places no call.
func TestCheckRequestIsStrict(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	calls := countPrefix(h.commands(), "channel originate")
	site, role, _ := events.ParseNodeID(h.node)

	tests := []struct {
		name, body string
		wantCode   string
		wantCall   bool
	}{
		{"empty body", "", "400", false},
		{"blank body", " \n", "400", false},
		{"empty object", `{}`, "400", false},
		{"null", `null`, "400", false},
		{"probe as a string", `{"probe":"yes"}`, "400", false},
		{"unknown field", `{"probe":true,"deliver":"x"}`, "400", false},
		{"two objects", `{"probe":false}{"probe":true}`, "400", false},
		{"checks only", `{"probe":false}`, "", false},
		{"checks and the probe call", `{"probe":true}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := srv.Conn.Request(events.CheckSubject(site, role), []byte(tt.body), 20*time.Second)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, msg.Header.Get("Nats-Service-Error-Code"), "%s", msg.Data)
			if tt.wantCode == "" {
				assert.Contains(t, string(msg.Data), `"passed":true`)
			}
			got := countPrefix(h.commands(), "channel originate")
			if tt.wantCall {
				assert.Equal(t, calls+1, got, "one probe call")
			} else {
				assert.Equal(t, calls, got, "no probe call")
			}
			calls = got
		})
	}
}

// TestNodeEndpointsRefuseJetStreamDeliveries: what JetStream delivers to a
// node's endpoints (a push consumer whose deliver subject is the check, a
// Nats-Stream header, a $JS.ACK reply) is neither run nor answered, even with
// a well-formed body.
func TestNodeEndpointsRefuseJetStreamDeliveries(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	calls := countPrefix(h.commands(), "channel originate")
	site, role, _ := events.ParseNodeID(h.node)
	check := events.CheckSubject(site, role)
	body := []byte(`{"probe":true}`)
	ctx := context.Background()
	_, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "HOSTILE", Subjects: []string{"hostile.>"}})
	require.NoError(t, err)
	_, err = srv.JS.Publish(ctx, "hostile.check", body)
	require.NoError(t, err)

	tests := []struct {
		name string
		send func(reply string) error
	}{
		{"a push consumer delivering to the check", func(string) error {
			// The service's queue group ("q", micro's default): without it
			// the server delivers nothing to a queue subscriber.
			c, err := srv.JS.CreateOrUpdateConsumer(ctx, "HOSTILE", jetstream.ConsumerConfig{
				Name: "evil", DeliverSubject: check, DeliverGroup: "q", AckPolicy: jetstream.AckNonePolicy,
			})
			if err != nil {
				return err
			}
			require.Eventually(t, func() bool {
				info, err := c.Info(ctx)
				return err == nil && info.Delivered.Consumer >= 1
			}, 10*time.Second, 10*time.Millisecond, "the consumer delivered")
			return nil
		}},
		{"a Nats-Stream header", func(reply string) error {
			m := nats.NewMsg(check)
			m.Data, m.Reply = body, reply
			m.Header.Set("Nats-Stream", "HOSTILE")
			return srv.Conn.PublishMsg(m)
		}},
		{"a $JS.ACK reply (the server refuses it from a client too)", func(string) error {
			return srv.Conn.PublishRequest(check, "$JS.ACK.HOSTILE.evil.1.1.1.1700000000000000000.0", body)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox := srv.Conn.NewRespInbox()
			sub, err := srv.Conn.SubscribeSync(inbox)
			require.NoError(t, err)
			defer func() { _ = sub.Unsubscribe() }()
			require.NoError(t, tt.send(inbox))
			// A check sent after it is answered once the hostile one was
			// handled (one subscription, in order): then nothing came back.
			_, err = srv.Conn.Request(check, []byte(`{"probe":false}`), 30*time.Second)
			require.NoError(t, err, "a plain check is answered")
			_, err = sub.NextMsg(100 * time.Millisecond)
			require.True(t, errors.Is(err, nats.ErrTimeout), "no answer: %v", err)
			assert.Equal(t, calls, countPrefix(h.commands(), "channel originate"), "no probe call")
		})
	}
}
