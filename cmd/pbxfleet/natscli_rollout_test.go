package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// TestNatsCLIDrivesARollout is the README's "drive it with the nats CLI"
// section, run for real: a control plane (orchestrator service), a 3-site lab
// fleet with real agents, and only the nats CLI to start, pause, resume and
// inspect a rollout. Set PBXFLEET_README_OUT=file to capture the transcript.
func TestNatsCLIDrivesARollout(t *testing.T) {
	bin := natstest.CLI(t)
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	eng := orchestrator.New(srv.JS, srv.Conn)
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sites := labfleet.Sites("cli", 40, 3)
	fleet, err := labfleet.Start(context.Background(), sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: srv.URL, Deadlines: node.Deadlines{Verify: 20 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })

	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), "", planner.Options{})
	require.NoError(t, err)
	plan, err := planner.BuildPlan(spec, nil)
	require.NoError(t, err)
	body, err := json.Marshal(orchestrator.StartRequest{Plan: plan.RolloutPlan(), Strategy: orchestrator.Strategy{
		Canary: 1, WaveSize: 1, Bake: 3 * time.Second, SiteDeadline: time.Minute,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit,
	}})
	require.NoError(t, err)
	var transcript strings.Builder
	nats := func(args ...string) string {
		out := natstest.RunCLI(t, bin, srv.URL, nil, args...)
		shown := strings.Join(args, " ")
		if strings.HasPrefix(shown, "req pbxfleet.rollout.start") {
			shown = "req pbxfleet.rollout.start \"$(cat start.json)\""
		}
		transcript.WriteString("$ nats " + shown + "\n" + out + "\n")
		return out
	}

	out := nats("micro", "ls")
	assert.Contains(t, out, "pbxfleet-orchestrator")
	assert.Contains(t, out, "pbxfleet-node")

	out = nats("req", "pbxfleet.rollout.start", string(body))
	var started orchestrator.StartResponse
	require.NoError(t, json.Unmarshal([]byte(lastJSON(out)), &started), out)
	require.NotEmpty(t, started.ID)

	// Pause during the bake after the canary, then resume.
	require.Eventually(t, func() bool {
		r, err := eng.Get(context.Background(), started.ID)
		return err == nil && r.Counters.Converged >= 1
	}, 60*time.Second, 200*time.Millisecond)
	out = nats("req", "pbxfleet.rollout.pause", `{"current":true}`)
	assert.Contains(t, out, `"phase":"paused"`)
	out = nats("req", "pbxfleet.rollout.status", `{"id":"`+started.ID+`"}`)
	assert.Contains(t, out, `"phase":"paused"`)
	nats("req", "pbxfleet.rollout.resume", `{"current":true}`)
	require.Eventually(t, func() bool {
		r, err := eng.Get(context.Background(), started.ID)
		return err == nil && r.Phase.Terminal()
	}, 90*time.Second, 300*time.Millisecond)
	out = nats("req", "pbxfleet.rollout.status", `{"current":true}`)
	assert.Contains(t, out, `"phase":"succeeded"`)
	assert.Contains(t, out, `"converged":3`)
	out = nats("kv", "ls", "pbxfleet_desired")
	assert.Contains(t, out, "cli-1.pbx")
	// Each node reports twice: awaiting_probe once its checks pass, then the
	// result of the probe the orchestrator ordered.
	out = nats("sub", "--stream", "PBXFLEET_RESULTS", "--all", "--count", "12", "--raw", "pbxfleet.result.>")
	assert.Equal(t, 6, strings.Count(out, `"outcome":"awaiting_probe"`))
	assert.Equal(t, 6, strings.Count(out, `"outcome":"converged"`))
	for _, s := range secrets {
		assert.NotContains(t, transcript.String()+out, s)
	}
	if path := os.Getenv("PBXFLEET_README_OUT"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(transcript.String()), 0o644))
	}
}

// lastJSON returns the last line of out that looks like a JSON document (nats
// req prints timestamps before the body).
func lastJSON(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}
