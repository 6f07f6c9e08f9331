package orchestrator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

func TestCutWaves(t *testing.T) {
	ten := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	tests := []struct {
		name       string
		sites      []string
		strategy   Strategy
		wantWaves  int
		wantCanary bool
		want       map[string]int
	}{
		{"zero strategy: one wave", ten[:3], Strategy{}, 1, false, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"canary count then one wave", ten[:4], Strategy{Canary: 1}, 2, true, map[string]int{"a": 1, "b": 2, "c": 2, "d": 2}},
		{"named canary", ten[:4], Strategy{CanarySites: []string{"c"}, WaveSize: 2}, 3, true,
			map[string]int{"c": 1, "a": 2, "b": 2, "d": 3}},
		{"named canary that was skipped", ten[:2], Strategy{CanarySites: []string{"z"}}, 1, false, map[string]int{"a": 1, "b": 1}},
		{"wave size", ten[:5], Strategy{WaveSize: 2}, 3, false, map[string]int{"a": 1, "b": 1, "c": 2, "d": 2, "e": 3}},
		{"percent rounds up", ten, Strategy{Canary: 1, WavePercent: 25}, 4, true, // 25% of 9 is 2.25: 3 a wave
			map[string]int{"a": 1, "b": 2, "c": 2, "d": 2, "e": 3, "f": 3, "g": 3, "h": 4, "i": 4, "j": 4}},
		{"canary larger than the plan", ten[:2], Strategy{Canary: 5}, 1, true, map[string]int{"a": 1, "b": 1}},
		{"nothing to do", nil, Strategy{Canary: 1}, 0, false, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, waves, canary := cutWaves(tt.sites, tt.strategy)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantWaves, waves)
			assert.Equal(t, tt.wantCanary, canary)
		})
	}
}

func TestStrategyValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       Strategy
		wantErr []string
	}{
		{"zero value", Strategy{}, nil},
		{"full", Strategy{Canary: 2, WavePercent: 10, Parallelism: 5, Bake: time.Minute, SiteDeadline: time.Minute,
			MaxFailed: 3, MaxUnreachable: 4, WaveMaxFailed: NoLimit, WaveMaxUnreachable: 1, OnFailure: OnFailurePause}, nil},
		{"exclusive pairs", Strategy{Canary: 1, CanarySites: []string{"a"}, WaveSize: 2, WavePercent: 5},
			[]string{"canary and canary_sites", "wave_size and wave_percent"}},
		{"ranges", Strategy{Canary: -1, WavePercent: 101, Parallelism: -1, Bake: -1, SiteDeadline: -1, MaxFailed: -1,
			MaxUnreachable: -1, WaveMaxFailed: -2, WaveMaxUnreachable: -2, OnFailure: "retry"},
			[]string{"canary -1", "wave_percent 101", "parallelism -1", "bake", "site_deadline", "max_failed -1",
				"max_unreachable -1", "wave_max_failed -2", "wave_max_unreachable -2", `on_failure "retry"`}},
		{"bad canary sites", Strategy{CanarySites: []string{"Bad!", "a", "a"}}, []string{"canary_sites[0]", "a listed twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidStrategy)
			for _, w := range tt.wantErr {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestPlanValidate(t *testing.T) {
	good := events.Trunk{
		Site: "a", Scenario: events.ScenarioLAN, PBXAddress: "10.0.0.1", PBXPort: 5060, OMLAddress: "10.0.0.2",
		OMLTransport: "t", OMLPort: 5161, PBXTrunkName: "p", OMLTrunkName: "o", PBXUser: "u", OMLUser: "v",
		Secret: "S3cret-Trunk.Key42", PBXCodecs: []string{"ulaw"}, OMLCodecs: []string{"ulaw"},
	}
	other := good
	withSecret := func(secret string) map[string]events.Trunk {
		tr := good
		tr.Secret = secret
		return map[string]events.Trunk{"pbx": tr}
	}
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	userSeed := string(seed)
	other.Site = "b"
	tests := []struct {
		name    string
		p       Plan
		wantErr []string
	}{
		{"good", Plan{Targets: []Target{{Site: "a", Nodes: map[string]events.Trunk{"pbx": good, "oml": good}}}}, nil},
		{"one role is enough", Plan{Targets: []Target{{Site: "a", Nodes: map[string]events.Trunk{"oml": good}}}}, nil},
		{"empty", Plan{}, []string{"no targets"}},
		{"bad site, twice, no nodes, bad role, wrong trunk site", Plan{Targets: []Target{
			{Site: "A!", Nodes: map[string]events.Trunk{"pbx": good}},
			{Site: "a", Nodes: map[string]events.Trunk{"pbx": good}},
			{Site: "a", Nodes: map[string]events.Trunk{"pbx": good}},
			{Site: "c"},
			{Site: "b", Nodes: map[string]events.Trunk{"web": other, "pbx": good}},
		}}, []string{"targets[0].site", "site a: listed twice", "site c: no nodes", `site b: nodes: invalid role: "web"`, "site b node b.pbx"}},
		{"the manual's omnileads", Plan{Targets: []Target{{Site: "a", Nodes: withSecret("omnileads")}}}, []string{"site a node a.pbx: secret: weak secret: a well-known password"}},
		{"three characters", Plan{Targets: []Target{{Site: "a", Nodes: withSecret("x7Q")}}}, []string{"site a node a.pbx: secret: weak secret: shorter than 12"}},
		{"omnileads in a lab", Plan{AcceptWeakSecrets: true, Targets: []Target{{Site: "a", Nodes: withSecret("omnileads")}}}, nil},
		{"an nkey seed", Plan{Targets: []Target{{Site: "a", Nodes: withSecret(userSeed)}}}, []string{"site a node a.pbx: secret: key material"}},
		{"an nkey seed in a lab", Plan{AcceptWeakSecrets: true, Targets: []Target{{Site: "a", Nodes: withSecret(userSeed)}}}, []string{"key material"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidPlan)
			for _, w := range tt.wantErr {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestStrategyJSON(t *testing.T) {
	s := Strategy{Canary: 1, WavePercent: 20, Bake: 90 * time.Second, SiteDeadline: 5 * time.Minute,
		MaxUnreachable: 2, WaveMaxFailed: NoLimit, WaveMaxUnreachable: NoLimit, OnFailure: OnFailurePause}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"canary":1,"wave_percent":20,"bake":"1m30s","site_deadline":"5m0s","max_failed":0,
		"max_unreachable":2,"wave_max_failed":-1,"wave_max_unreachable":-1,"on_failure":"pause"}`, string(b))
	var back Strategy
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, s, back)

	require.NoError(t, json.Unmarshal([]byte(`{"bake":1000000000}`), &back))
	assert.Equal(t, time.Second, back.Bake, "nanoseconds are accepted too")
	require.Error(t, json.Unmarshal([]byte(`{"bake":"soon"}`), &back))
	require.Error(t, json.Unmarshal([]byte(`{"waves":3}`), &back), "unknown fields are refused")
}
