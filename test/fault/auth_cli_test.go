package fault

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// authSites is how many sites the authenticated fleet has.
const authSites = 2

// controlPlaneUp is what `pbxfleet serve` prints once its buckets and stream
// are provisioned.
const controlPlaneUp = "pbxfleet control plane on"

// TestAuthenticatedControlPlaneCLI runs the authenticated control plane the way
// an operator does, every part a process of its own: `pbxfleet creds` makes
// the keys, `pbxfleet serve --auth` admits only them, one pbx-node and one
// agents-node per site connect with their own `.nk` and open their sealed
// secret with their own `.xk`, and `pbxfleet rollout --seal --nkey
// operator.nk` rolls the fleet out. Then the real nats CLI checks that the
// authentication bites: no credentials, no entry; a node's key reads its own
// desired state and no other; the operator sees only ciphertext.
func TestAuthenticatedControlPlaneCLI(t *testing.T) {
	natsBin := natstest.CLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := t.TempDir()

	sites := labfleet.Sites("authcli", addrAuthCLI, authSites)
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	fleetFile := filepath.Join(root, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleetFile, labfleet.FleetYAML(sites, secrets), 0o600))
	var procs []*proctest.Proc

	// pbxfleet creds
	credsDir := filepath.Join(root, "creds")
	credsProc := proctest.Start(t, "creds", bins.PBXFleet, "creds", "--fleet", fleetFile, "--out", credsDir)
	procs = append(procs, credsProc)
	credsProc.Wait(t, 30*time.Second)
	require.NoError(t, credsProc.Err(), "pbxfleet creds:\n%s", credsProc.Output())
	operatorNK := filepath.Join(credsDir, "operator.nk")
	var nodeIDs []string
	for _, s := range sites {
		nodeIDs = append(nodeIDs, events.NodeID(s.ID, events.RolePBX), events.NodeID(s.ID, events.RoleOML))
	}
	for _, name := range append([]string{"operator", "orchestrator"}, nodeIDs...) {
		for _, ext := range []string{".nk", ".xk"} {
			if name == "operator" && ext == ".xk" {
				continue // the operator seals nothing
			}
			fi, err := os.Stat(filepath.Join(credsDir, name+ext))
			require.NoError(t, err, "pbxfleet creds wrote %s%s", name, ext)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s%s is private", name, ext)
		}
	}
	t.Logf("checked: pbxfleet creds wrote an nkey and a curve seed (0600) for each of %d nodes and the orchestrator, and operator.nk", len(nodeIDs))

	// pbxfleet serve --auth
	listen := "127.0.0.1:" + strconv.Itoa(proctest.FreePort(t))
	url := "nats://" + listen
	serve := proctest.Start(t, "serve", bins.PBXFleet, "serve", "--auth", credsDir, "--data", filepath.Join(root, "data"),
		"--listen", listen, "--log-format", "text")
	procs = append(procs, serve)
	proctest.Eventually(t, 30*time.Second, "pbxfleet serve --auth provisioned", func() (bool, string) {
		if serve.Exited() {
			t.Fatalf("pbxfleet serve --auth ended: %v\n%s", serve.Err(), proctest.Tail(serve.Output(), 20))
		}
		return strings.Contains(serve.Output(), controlPlaneUp), proctest.Tail(serve.Output(), 3)
	})
	operatorOpt, err := nats.NkeyOptionFromSeed(operatorNK)
	require.NoError(t, err)
	_, js := proctest.DialNATS(t, "fault test", url, operatorOpt)

	// (a) No credentials, or a key the server does not know: refused.
	nc, err := nats.Connect(url, nats.Name("fault test without credentials"), nats.NoReconnect(), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
	}
	require.ErrorIs(t, err, nats.ErrAuthorization, "a connection with no credentials is refused")
	strangerNK := filepath.Join(root, "stranger.nk")
	stranger, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := stranger.Seed()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(strangerNK, seed, 0o600))
	strangerOpt, err := nats.NkeyOptionFromSeed(strangerNK)
	require.NoError(t, err)
	nc, err = nats.Connect(url, strangerOpt, nats.NoReconnect(), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
	}
	require.ErrorIs(t, err, nats.ErrAuthorization, "an nkey not made by pbxfleet creds is refused")
	var cliOut []string
	out := natsCLIRefused(t, natsBin, url, "kv", "ls")
	require.Contains(t, strings.ToLower(out), "authorization violation", "nats kv ls without credentials")
	cliOut = append(cliOut, out)
	t.Logf("checked: pbxfleet serve --auth refuses a connection with no credentials (nats.go and `nats kv ls`) and one with an unknown nkey")

	// Lab hosts in process (their CLI on a Unix socket), agents as processes
	// with their own credentials.
	confDirs := map[string]string{}
	sockDir := proctest.ShortDir(t)
	for _, s := range sites {
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			id := events.NodeID(s.ID, role)
			addr, bin := s.PBXAddress, bins.PBXNode
			if role == events.RoleOML {
				addr, bin = s.OMLAddress, bins.AgentsNode
			}
			confDirs[id] = filepath.Join(root, id, "etc")
			sock := filepath.Join(sockDir, id+".ctl")
			serveCLI(t, sock, startLabHost(t, lab.Role(role), id, confDirs[id], addr))
			cfg := writeAgentConfig(t, filepath.Join(root, id+".yaml"), id, url, confDirs[id], filepath.Join(root, id, "state"),
				[]string{bins.PBXLab, "lab", "rx", "--socket", sock},
				agentCreds{nkey: filepath.Join(credsDir, id+".nk"), secretKey: filepath.Join(credsDir, id+".xk")})
			procs = append(procs, proctest.Start(t, id, bin, "--config", cfg, "--log-format", "text"))
		}
	}
	for _, id := range nodeIDs {
		proctest.Eventually(t, 30*time.Second, id+" puts its status with its own nkey", func() (bool, string) {
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			defer scancel()
			st, err := status(sctx, js, id)
			if err != nil {
				return false, err.Error()
			}
			return st.Node == id, fmt.Sprintf("%+v", st)
		})
	}
	t.Logf("checked: %d agent processes (nats.nkey + secret_key_file from pbxfleet creds) connected and put their status", len(nodeIDs))

	// pbxfleet rollout --seal --nkey operator.nk
	rollout := proctest.Start(t, "rollout", bins.PBXFleet, "rollout", "start", fleetFile, "--seal", credsDir,
		"--nats-url", url, "--nkey", operatorNK, "--no-progress", "--site-deadline", "45s")
	procs = append(procs, rollout)
	rollout.Wait(t, 60*time.Second)
	rout := rollout.Output()
	require.NoError(t, rollout.Err(), "pbxfleet rollout exits 0:\n%s", rout)
	m := regexp.MustCompile(`rollout (\S+) started: `).FindStringSubmatch(rout)
	require.NotNil(t, m, "the rollout's id:\n%s", rout)
	id := m[1]
	require.Contains(t, rout, fmt.Sprintf("rollout %s succeeded: %d sites, %d converged, 0 failed, 0 unreachable", id, authSites, authSites))
	r, err := readRollout(ctx, js, id)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	require.Equal(t, authSites, r.Counters.Converged, r.String())
	n := checkOncePerNode(ctx, t, js, r)
	for _, nodeID := range nodeIDs {
		for _, d := range desiredHistory(ctx, t, js, nodeID) {
			require.True(t, d.Trunk.Secret == "", "%s revision %d holds a plaintext secret", nodeID, d.Revision)
			require.NotEmpty(t, d.Trunk.SealedSecret, "%s revision %d: a sealed secret", nodeID, d.Revision)
		}
	}
	for _, s := range sites {
		b, err := os.ReadFile(filepath.Join(confDirs[events.NodeID(s.ID, events.RolePBX)], "pbxfleet_sip.conf"))
		require.NoError(t, err)
		require.True(t, bytes.Contains(b, []byte("secret="+secrets[s.ID]+"\n")), "%s's agent opened its sealed secret into its trunk", s.ID)
	}
	t.Logf("checked: pbxfleet rollout --seal --nkey operator.nk exited 0, rollout %s %s (%d/%d converged); %d nodes: 1 sealed put and 1 converged result each; each PBX's trunk file holds the secret its agent opened",
		id, r.Phase, r.Counters.Converged, r.Counters.Sites, n)

	// (b) A node's key reads its own desired state and no other.
	self, other := sites[0], sites[1]
	selfID := events.NodeID(self.ID, events.RolePBX)
	nodeFlags := []string{"--nkey", filepath.Join(credsDir, selfID+".nk"),
		"--inbox-prefix", natsclient.InboxPrefix(self.ID, events.RolePBX), "--timeout", "3s"}
	out = natstest.RunCLI(t, natsBin, url, nil, append(nodeFlags, "kv", "get", "--raw", events.BucketDesired, selfID)...)
	require.Contains(t, out, "sealed_secret", "%s reads its own desired state", selfID)
	cliOut = append(cliOut, out)
	for _, key := range []string{events.NodeID(other.ID, events.RolePBX), events.NodeID(self.ID, events.RoleOML)} {
		out = natsCLIRefused(t, natsBin, url, append(nodeFlags, "kv", "get", "--raw", events.BucketDesired, key)...)
		require.NotContains(t, out, "sealed_secret", "%s must not read %s", selfID, key)
		require.Contains(t, out, `Permissions Violation for Publish to "$JS.API.DIRECT.GET.KV_`+events.BucketDesired+`.$KV.`+events.BucketDesired+`.`+key+`"`,
			"the server refused %s's read of %s", selfID, key)
		cliOut = append(cliOut, out)
	}
	t.Logf("checked: `nats --nkey %s.nk kv get --raw %s` reads %s and is refused (permissions violation on the direct get) for %s.pbx and its sibling %s.oml",
		selfID, events.BucketDesired, selfID, other.ID, self.ID)

	// (c) The operator reads every desired state: ciphertext only.
	for _, nodeID := range nodeIDs {
		out = natstest.RunCLI(t, natsBin, url, nil, "--nkey", operatorNK, "kv", "get", "--raw", events.BucketDesired, nodeID)
		require.Contains(t, out, `"sealed_secret":`, nodeID)
		require.False(t, strings.Contains(out, `"secret":`), "%s's desired state holds a secret field", nodeID)
		cliOut = append(cliOut, out)
	}
	t.Logf("checked: `nats --nkey operator.nk kv get --raw %s <node>` shows sealed_secret and no secret field for all %d nodes", events.BucketDesired, len(nodeIDs))

	// No secret in any output, nor in clear in the server's store. (The
	// checks never print a secret themselves.)
	for _, p := range procs {
		for site, secret := range secrets {
			require.False(t, strings.Contains(p.Output(), secret), "%s's output holds %s's secret", p.Name, site)
		}
	}
	for i, o := range cliOut {
		for site, secret := range secrets {
			require.False(t, strings.Contains(o, secret), "nats CLI output %d holds %s's secret", i, site)
		}
	}
	// The store is read once serve has ended (and flushed it); the sealed
	// secret found there shows the scan sees the stored desired states.
	hist := desiredHistory(ctx, t, js, selfID)
	require.NotEmpty(t, hist)
	sealed := []byte(hist[len(hist)-1].Trunk.SealedSecret)
	serve.Stop()
	store, size, seen := snapshot(t, filepath.Join(root, "data")), 0, false
	for name, b := range store {
		size += len(b)
		seen = seen || bytes.Contains(b, sealed)
		for site, secret := range secrets {
			require.False(t, bytes.Contains(b, []byte(secret)), "serve's store file %s holds %s's secret in clear", name, site)
		}
	}
	require.True(t, seen, "the scan of serve's store finds %s's sealed secret", selfID)
	t.Logf("checked: no fleet secret in the output of any of %d processes, in any nats CLI output, nor in the %d files (%d bytes) of serve's JetStream store (which hold the sealed secrets)",
		len(procs), len(store), size)
}

// natsCLIRefused runs the nats CLI against url and returns its combined
// output, failing the test unless the CLI ran and exited non-zero
// (natstest.RunCLI is the counterpart for commands that must succeed).
func natsCLIRefused(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--server", url, "--no-context"}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "nats %s did not end", strings.Join(args, " "))
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "nats %s must be refused: %s", strings.Join(args, " "), out)
	t.Logf("$ nats %s  (exit %d)\n%s", strings.Join(args, " "), exit.ExitCode(), strings.TrimSpace(string(out)))
	return string(out)
}
