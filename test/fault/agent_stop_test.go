package fault

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labctl"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// stopScript is the agent's `asterisk -rx` for a stop: the Nth time it is
// asked a command starting with the trigger, it sends SIGTERM to its parent
// (the agent, as `systemctl restart` would) and still runs the command, like
// `asterisk -rx` would.
const stopScript = `#!/bin/sh
# pbxfleet fault test: asterisk -rx that stops the agent at one phase.
case "$1" in
'%s'*)
	echo x >> '%s'
	if [ "$(wc -l < '%s')" -eq %d ]; then
		echo "$PPID" > '%s'
		kill -TERM "$PPID"
	fi
	;;
esac
exec '%s' lab rx --socket '%s' "$@"
`

// TestAgentStoppedAtEveryPhase: pbx-node is stopped (SIGTERM, as `systemctl
// restart pbx-node` does) at each phase of an apply: during the reload, the
// checks, the wait for the probe order, the probe call, and the rollback's
// reload. Each time the agent either finishes what it started (the reload, the
// probe, the rollback and its reload run to their end, bounded by their own
// deadlines) and says so in a final result, or leaves the apply in flight in
// its journal; it never reports an end that Asterisk does not run. Started
// again, it completes the revision and its status is healthy.
func TestAgentStoppedAtEveryPhase(t *testing.T) {
	tests := []struct {
		name    string
		trigger string // the command whose Nth occurrence stops the agent
		nth     int
		failing bool // the revision fails its checks (a port nobody listens on)
		// finish: the agent ended the apply before exiting (a final result);
		// otherwise the journal shows it in flight.
		finish bool
	}{
		{name: "reload", trigger: "sip reload", nth: 1},
		{name: "trunk object check", trigger: "sip show peer ", nth: 1},
		{name: "dialplan check, then the wait for the order", trigger: "dialplan show", nth: 1},
		{name: "probe call", trigger: "channel originate", nth: 1, finish: true},
		{name: "rollback reload", trigger: "sip reload", nth: 2, failing: true, finish: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stopAtPhase(t, addrStop+i, tt.trigger, tt.nth, tt.failing, tt.finish)
		})
	}
}

func stopAtPhase(t *testing.T, addr int, trigger string, nth int, failing, finish bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	startOrchestratorService(t, srv.JS, srv.Conn)
	pbxAddr, omlAddr := labfleet.Addresses(addr)
	site := labfleet.Site{ID: fmt.Sprintf("stop-%d", addr-addrStop+1), Scenario: asterisk.ScenarioLAN, PBXAddress: pbxAddr, OMLAddress: omlAddr, Profile: "1.x"}
	plan := fleetPlan(t, []labfleet.Site{site})
	pbxPlan, omlPlan := plan.Sites[0].Nodes[0], plan.Sites[0].Nodes[1]
	pbxID, omlID := pbxPlan.Desired.Node, omlPlan.Desired.Node
	rev := pbxPlan.Desired.Revision
	if failing {
		pbxPlan.Desired.Trunk.OMLPort = 5199 // nobody listens: qualify fails, the apply rolls back
	}

	root := t.TempDir()
	pbxConf, pbxState := filepath.Join(root, "pbx", "etc"), filepath.Join(root, "pbx", "state")
	sock := filepath.Join(proctest.ShortDir(t), "pbx.ctl")
	serveCLI(t, sock, startLabHost(t, lab.RolePBX, pbxID, pbxConf, pbxAddr))
	omlConf := filepath.Join(root, "oml", "etc")
	omlHost := startLabHost(t, lab.RoleOML, omlID, omlConf, omlAddr)
	runAgent(t, srv.URL, node.Config{
		Node: omlID, ConfigDir: omlConf, StateDir: filepath.Join(root, "oml", "state"),
		Deadlines:    node.Deadlines{Verify: 20 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second,
	}, node.OMLSide(), omlHost)

	counter, marker := filepath.Join(root, "count"), filepath.Join(root, "stopped.pid")
	script := filepath.Join(root, "asterisk-rx-stopper.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(stopScript, trigger, counter, counter, nth, marker, bins.PBXLab, sock)), 0o755))
	cfg := writeAgentConfig(t, filepath.Join(root, "pbx-node-stopper.yaml"), pbxID, srv.URL, pbxConf, pbxState, []string{script})
	if failing { // the checks fail at their deadline: keep it short
		b, err := os.ReadFile(cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cfg, bytes.Replace(b, []byte("verify: 40s"), []byte("verify: 6s"), 1), 0o600))
	}
	first := proctest.Start(t, "pbx-node-1", bins.PBXNode, "--config", cfg, "--log-format", "text")
	putDesiredOnOrder(ctx, t, srv.JS, omlPlan.Desired)
	putDesiredOnOrder(ctx, t, srv.JS, pbxPlan.Desired)

	first.Wait(t, 60*time.Second)
	require.FileExists(t, marker, "the agent was stopped at %q #%d", trigger, nth)
	require.NoError(t, first.Err(), "pbx-node exits cleanly on SIGTERM:\n%s", proctest.Tail(first.Output(), 20))
	final := resultsFor(allResults(ctx, t, srv.JS), pbxID, rev)
	j := readJournal(t, pbxState)
	if finish {
		require.Len(t, final, 1, "the apply ran to its end and reported it:\n%s", proctest.Tail(first.Output(), 20))
		require.Nil(t, j.InFlight, "nothing left in flight")
		want := events.OutcomeConverged
		if failing {
			want = events.OutcomeRolledBack
		}
		require.Equal(t, want, final[0].res.Outcome, final[0].res.Reason)
	} else {
		require.Empty(t, final, "no end was reported for an apply that did not end")
		require.NotNil(t, j.InFlight, "the journal shows the apply in flight for the next start")
		require.Equal(t, rev, j.InFlight.Revision)
	}
	// What Asterisk (the lab) runs is what the files hold: a peer is loaded
	// exactly when the file holds one (a rollback's reload ran, or the reload
	// before the stop did).
	// chan_sip applies `sip reload` after the command returned (the lab does
	// too), so agreement is awaited, not read once.
	sipConf, err := os.ReadFile(filepath.Join(pbxConf, "pbxfleet_sip.conf"))
	require.NoError(t, err)
	trunk := pbxPlan.Desired.Trunk.PBXTrunkName
	if finish && failing {
		require.NotContains(t, string(sipConf), "["+trunk+"]", "the rollback put the previous (empty) file back")
	}
	proctest.Eventually(t, 5*time.Second, "the files and the running peers agree", func() (bool, string) {
		peers, _, err := labctl.Run(ctx, sock, "sip show peers")
		if err != nil {
			return false, err.Error()
		}
		return bytes.Contains(sipConf, []byte("["+trunk+"]")) == strings.Contains(peers, trunk), string(sipConf) + "\n" + peers
	})
	t.Logf("checked: stopped at %q #%d: %s; files and running peers agree", trigger, nth,
		map[bool]string{true: "the apply ran to its end and reported it", false: "the journal shows the apply in flight, no end reported"}[finish])

	normal := writeAgentConfig(t, filepath.Join(root, "pbx-node.yaml"), pbxID, srv.URL, pbxConf, pbxState,
		[]string{bins.PBXLab, "lab", "rx", "--socket", sock})
	second := proctest.Start(t, "pbx-node-2", bins.PBXNode, "--config", normal, "--log-format", "text")
	t.Cleanup(second.Stop)
	wantApplied := rev
	if failing {
		wantApplied = 0
	}
	proctest.Eventually(t, 40*time.Second, pbxID+" is settled after the restart", func() (bool, string) {
		st, err := status(ctx, srv.JS, pbxID)
		if err != nil {
			return false, err.Error()
		}
		j := readJournal(t, pbxState)
		return st.AppliedRevision == wantApplied && j.InFlight == nil && (failing || st.Healthy),
			fmt.Sprintf("status %+v, in flight %v", st, j.InFlight != nil)
	})
	if !failing {
		// The status is put before the result: the result follows.
		var got []storedResult
		proctest.Eventually(t, 10*time.Second, "the final result of revision 1", func() (bool, string) {
			got = resultsFor(allResults(ctx, t, srv.JS), pbxID, rev)
			return len(got) > 0, "none yet"
		})
		require.Len(t, got, 1, "one final result for revision %d across both runs", rev)
		require.Equal(t, events.OutcomeConverged, got[0].res.Outcome, got[0].res.Reason)
	}
	t.Logf("checked: restarted, %s settled at applied revision %d, journal clear", pbxID, wantApplied)
}
