package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	t0 = time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC)
	t1 = t0.Add(4200 * time.Millisecond)
)

// sampleDesired returns a full desired state for bsas-1.pbx, revision 7.
func sampleDesired() Desired {
	return Desired{
		Node: "bsas-1.pbx", Revision: 7, Rollout: "r-2025-03-14", PlanHash: "sha256:abc",
		Trunk: Trunk{
			Site: "bsas-1", Scenario: ScenarioLAN,
			PBXAddress: "10.0.0.10", PBXPort: 5060, OMLAddress: "10.0.0.20", OMLTransport: "trunk-transport", OMLPort: 5161,
			PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "issabel", OMLUser: "omnileads",
			Secret:    "issabelOML",
			PBXCodecs: []string{"alaw"}, OMLCodecs: []string{"alaw", "ulaw"}, QualifyFrequency: 60,
			DIDs:         []DID{{Number: "098098", Extension: "5000"}, {Number: "098099"}},
			Agents:       []Agent{{ID: "1", SIPNumber: "1006", Name: "Ana", Extension: "201"}},
			AgentRouting: AgentRoutingPattern, AgentPattern: "_1XXXX.", ProbeNumber: "999999",
		},
	}
}

// minimalDesired returns a desired state with only the required fields, sealed.
func minimalDesired() Desired {
	return Desired{
		Node: "bsas-1.oml", Revision: 1,
		Trunk: Trunk{
			Site: "bsas-1", Scenario: ScenarioDocker,
			PBXAddress: "pbx.example", PBXPort: 5060, OMLAddress: "oml.example", OMLTransport: "trunk-nat-docker-transport", OMLPort: 5163,
			PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "issabel", OMLUser: "omnileads",
			SealedSecret: "c2VhbGVk", SealedBy: "XAZ6Q3ZKJ5VNGWWBKPKAFVW7BV6GHTY5XUI3A5CHPJ4OZWAZDD4PG2QZ",
			PBXCodecs: []string{"alaw"}, OMLCodecs: []string{"alaw"},
		},
	}
}

// sampleResult returns a full rolled-back result for bsas-1.pbx, revision 7.
func sampleResult() Result {
	return Result{
		Node: "bsas-1.pbx", Revision: 7, Rollout: "r-2025-03-14", Outcome: OutcomeRolledBack,
		Reason:    "probe: HANGUPCAUSE 21 (auth failed or far side has no trunk)",
		StartedAt: t0, FinishedAt: t1,
		Timings: map[string]int64{PhaseRender: 1, PhaseWrite: 3, PhaseReload: 40, PhaseVerify: 3900, PhaseRollback: 250},
		Files:   []FileHash{{Name: "sip_pbxfleet.conf", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
		Checks: []Check{
			{Name: "peer_exists", Passed: true, Raw: []string{"  * Name       : omnileads"}},
			{Name: "probe", Passed: false, Detail: "CONGESTION/21", Raw: []string{"Value: CONGESTION:21"}},
		},
		Trunk:            TrunkState{State: "OK", RTTMS: 1.5, Reachable: true},
		Probe:            &Probe{Number: "999999", DialStatus: "CONGESTION", HangupCause: 21, Verdict: "auth_or_far_trunk"},
		RestoredRevision: 6,
	}
}

// minimalResult returns a converged result with only the required fields.
func minimalResult() Result {
	return Result{
		Node: "bsas-1.oml", Revision: 1, Outcome: OutcomeConverged, StartedAt: t0, FinishedAt: t0,
		Trunk: TrunkState{State: "Avail"},
	}
}

// sampleStatus returns a drifting status for bsas-1.pbx.
func sampleStatus() Status {
	return Status{
		Node: "bsas-1.pbx", AppliedRevision: 7, Outcome: OutcomeConverged,
		Trunk: TrunkState{State: "LAGGED", RTTMS: 2500, Reachable: true},
		Drift: true, DriftFiles: []string{"sip_pbxfleet.conf"}, Healthy: false, Detail: "managed file edited",
		Version: "v0.1.0", At: t1,
	}
}

// minimalStatus returns a status with only the required fields.
func minimalStatus() Status {
	return Status{Node: "bsas-1.oml", Trunk: TrunkState{State: "UNKNOWN"}, Version: "dev", At: t0}
}

func samplePayloads() map[string]Payload {
	return map[string]Payload{
		"desired": sampleDesired(), "desired minimal": minimalDesired(),
		"result": sampleResult(), "result minimal": minimalResult(),
		"status": sampleStatus(), "status minimal": minimalStatus(),
	}
}

// encode returns the structured encoding of p from the orchestrator.
func encode(t testing.TB, p Payload) []byte {
	t.Helper()
	data, _, err := Encode(SourceOrchestrator, p)
	require.NoError(t, err)
	return data
}

// mutate decodes a JSON object, lets edit change it, and encodes it again.
func mutate(t testing.TB, data []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// dataOf returns the data object of a structured event, for edits.
func dataOf(m map[string]any) map[string]any { return m["data"].(map[string]any) }

// structured is the header pbxfleet publishes with.
func structured() map[string][]string { return PublishHeader("x") }
