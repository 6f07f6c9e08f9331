package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// request sends body to pbxfleet.rollout.<verb> and returns the reply and its
// service error code ("" when none).
func request(t *testing.T, nc *nats.Conn, verb string, body []byte) ([]byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		msg, err := nc.RequestWithContext(ctx, events.RolloutSubject(verb), body)
		if errors.Is(err, nats.ErrNoResponders) {
			time.Sleep(10 * time.Millisecond) // the service is still registering
			continue
		}
		require.NoError(t, err)
		return msg.Data, msg.Header.Get(micro.ErrorCodeHeader)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// waitPhase follows the rollout's record until it reaches phase.
func waitPhase(t *testing.T, e *orchestrator.Engine, id string, phase orchestrator.Phase) orchestrator.Rollout {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := e.Watch(ctx, id)
	require.NoError(t, err)
	var last orchestrator.Rollout
	for r := range ch {
		last = r
		if r.Phase == phase {
			return r
		}
	}
	t.Fatalf("rollout %s never reached %s:\n%s", id, phase, dump(last))
	return last
}

// withSecret returns p with every node's secret set to secret.
func withSecret(p orchestrator.Plan, secret string) orchestrator.Plan {
	for i, t := range p.Targets {
		for role, tr := range t.Nodes {
			tr.Secret = secret
			p.Targets[i].Nodes[role] = tr
		}
	}
	return p
}

func TestServiceDrivesRolloutsOverNATS(t *testing.T) {
	srv := natstest.Start(t)
	names := sites(3)
	seed(t, srv, 1, 5060, names...)
	f := startFleet(t, srv, all(converge))
	e := newEngine(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	nc := srv.Conn

	body := mustJSON(t, orchestrator.StartRequest{Plan: plan(5070, names...), Strategy: orchestrator.Strategy{
		Canary: 1, WavePercent: 50, SiteDeadline: 30 * time.Second,
	}})
	data, code := request(t, nc, events.RolloutStart, body)
	require.Empty(t, code, string(data))
	var started orchestrator.StartResponse
	require.NoError(t, json.Unmarshal(data, &started))
	require.NotEmpty(t, started.ID)

	r := waitPhase(t, e, started.ID, orchestrator.PhaseSucceeded)
	assert.Equal(t, 3, r.Counters.Converged)
	assert.Equal(t, 3, r.Waves)

	data, code = request(t, nc, events.RolloutStatus, []byte(`{"current":true}`))
	require.Empty(t, code, string(data))
	var status orchestrator.Rollout
	require.NoError(t, json.Unmarshal(data, &status))
	assert.Equal(t, started.ID, status.ID, `{"current":true} means the current or last rollout`)
	assert.Equal(t, orchestrator.PhaseSucceeded, status.Phase)

	// A second rollout held in flight, then aborted through the service.
	f.setBehaviour(bySite(map[string]map[uint64]behaviour{"s1": {3: hold}}))
	data, code = request(t, nc, events.RolloutStart, mustJSON(t, orchestrator.StartRequest{
		Plan: plan(5080, names...), Strategy: orchestrator.Strategy{Canary: 1, SiteDeadline: 30 * time.Second},
	}))
	require.Empty(t, code, string(data))
	var second orchestrator.StartResponse
	require.NoError(t, json.Unmarshal(data, &second))
	f.waitFor("s1 put", func(f *fleet) bool { return f.sawPut("s1.pbx", 3) && f.sawPut("s1.oml", 3) })

	errCases := []struct {
		name, verb string
		body       []byte
		wantCode   string
	}{
		{"start while one is active", events.RolloutStart, mustJSON(t, orchestrator.StartRequest{Plan: plan(5090, "s9"), Strategy: orchestrator.Strategy{}}), orchestrator.CodeConflict},
		{"start with a body that is not JSON", events.RolloutStart, []byte("{"), orchestrator.CodeBadRequest},
		{"start with an empty plan", events.RolloutStart, []byte(`{"plan":{"targets":[]},"strategy":{}}`), orchestrator.CodeBadRequest},
		{"start with a bad strategy", events.RolloutStart, mustJSON(t, map[string]any{"plan": plan(5090, "s9"), "strategy": map[string]any{"on_failure": "shrug"}}), orchestrator.CodeBadRequest},
		{"start with the secret omnileads", events.RolloutStart, mustJSON(t, orchestrator.StartRequest{Plan: withSecret(plan(5090, "s9"), "omnileads")}), orchestrator.CodeBadRequest},
		{"start with a 3-character secret", events.RolloutStart, mustJSON(t, orchestrator.StartRequest{Plan: withSecret(plan(5090, "s9"), "x7Q")}), orchestrator.CodeBadRequest},
		{"status of an unknown rollout", events.RolloutStatus, []byte(`{"id":"19990101-000000-000000"}`), orchestrator.CodeNotFound},
		{"pause with an unknown field", events.RolloutPause, []byte(`{"rollout":"x"}`), orchestrator.CodeBadRequest},
		{"resume a finished rollout", events.RolloutResume, mustJSON(t, orchestrator.IDRequest{ID: started.ID}), orchestrator.CodeConflict},
		{"status with an empty body", events.RolloutStatus, nil, orchestrator.CodeBadRequest},
		{"pause with an empty body", events.RolloutPause, nil, orchestrator.CodeBadRequest},
		{"resume with an empty body", events.RolloutResume, nil, orchestrator.CodeBadRequest},
		{"abort with an empty body", events.RolloutAbort, nil, orchestrator.CodeBadRequest},
		{"rollback with an empty body", events.RolloutRollback, nil, orchestrator.CodeBadRequest},
		{"abort with {}", events.RolloutAbort, []byte(`{}`), orchestrator.CodeBadRequest},
		{"abort with null", events.RolloutAbort, []byte(`null`), orchestrator.CodeBadRequest},
		{"abort with an empty id", events.RolloutAbort, []byte(`{"id":""}`), orchestrator.CodeBadRequest},
		{"abort with current false", events.RolloutAbort, []byte(`{"current":false}`), orchestrator.CodeBadRequest},
		{"abort with both id and current", events.RolloutAbort, []byte(`{"id":"` + second.ID + `","current":true}`), orchestrator.CodeBadRequest},
		{"abort with two objects", events.RolloutAbort, []byte(`{"current":true}{"current":true}`), orchestrator.CodeBadRequest},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			data, code := request(t, nc, tc.verb, tc.body)
			assert.Equal(t, tc.wantCode, code, string(data))
		})
	}

	// Requests JetStream delivers (a push consumer's deliveries, anything with
	// its headers) are neither acted on nor answered, whatever their body.
	abort := []byte(`{"current":true}`)
	js := srv.JS
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "HOSTILE", Subjects: []string{"hostile.>"}})
	require.NoError(t, err)
	_, err = js.Publish(context.Background(), "hostile.abort", abort)
	require.NoError(t, err)
	hostile := []struct {
		name string
		send func() error
	}{
		{"a push consumer delivering to the abort verb", func() error {
			c, err := js.CreateOrUpdateConsumer(context.Background(), "HOSTILE", jetstream.ConsumerConfig{
				Name: "evil", DeliverSubject: events.RolloutSubject(events.RolloutAbort), DeliverGroup: "q", AckPolicy: jetstream.AckNonePolicy,
			})
			if err != nil {
				return err
			}
			// The server has sent the delivery once the consumer counts it.
			require.Eventually(t, func() bool {
				info, err := c.Info(context.Background())
				return err == nil && info.Delivered.Consumer >= 1
			}, 10*time.Second, 10*time.Millisecond, "the consumer delivered")
			return nil
		}},
		{"a Nats-Stream header", func() error {
			m := nats.NewMsg(events.RolloutSubject(events.RolloutAbort))
			m.Data = abort
			m.Header.Set("Nats-Stream", "HOSTILE")
			m.Reply = nc.NewRespInbox()
			return nc.PublishMsg(m)
		}},
		{"a $JS.ACK reply (the server refuses it from a client too)", func() error {
			return nc.PublishRequest(events.RolloutSubject(events.RolloutAbort), "$JS.ACK.HOSTILE.evil.1.1.1.1700000000000000000.0", abort)
		}},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			require.NoError(t, h.send())
			// A request to the same endpoint after it is answered only once
			// the hostile one was handled (one subscription, in order).
			data, code := request(t, nc, events.RolloutAbort, []byte(`{"id":"no-such-rollout"}`))
			require.Equal(t, orchestrator.CodeNotFound, code, string(data))
			r, err := e.Get(context.Background(), second.ID)
			require.NoError(t, err)
			assert.False(t, r.Phase.Terminal(), "the rollout must not be aborted: %s", r.Phase)
		})
	}

	data, code = request(t, nc, events.RolloutAbort, abort)
	require.Empty(t, code, string(data))
	r = waitPhase(t, e, second.ID, orchestrator.PhaseAborted)
	assert.Equal(t, orchestrator.SiteCancelled, siteOutcomes(r)["s1"])
	for _, node := range nodes("s1") {
		h := keyHistory(t, srv, node)
		require.Equal(t, []uint64{1, 2, 3, 4}, revisions(h), node)
		assert.Equal(t, 5070, h[3].Trunk.PBXPort, "restored to the intent of the first rollout")
	}
	for _, node := range nodes("s2", "s3") {
		assert.Equal(t, []uint64{1, 2}, revisions(keyHistory(t, srv, node)), "the abort came before wave 2")
	}
}
