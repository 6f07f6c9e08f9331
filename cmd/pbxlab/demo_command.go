package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

type demoFlags struct {
	sites int
	keep  bool
	dir   string
	quiet bool
	http  string
}

func newDemoCommand() *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch a whole fleet roll out and a bad change get caught and rolled back (nothing to install)",
		Long: `demo runs everything in this one process, on loopback only:

  - an embedded NATS server with JetStream and the orchestrator service;
  - 6 sites (lan, cloud and docker scenarios), each an Issabel lab host and an
    OMniLeads lab host — simulated Asterisk ("lab"), speaking real SIP over UDP
    and answering the CLI in Asterisk 20's format — driven by the real agents;

then it rolls the trunk out with a canary and two waves, and rotates every site's
secret while one OMniLeads lab host silently keeps its old configuration across the
reload (reload replies prove nothing: docs/asterisk.md#reloads-and-cli-replies). Qualify stays OK on that site,
the probe call catches the mismatch (cause 21), the failure budget is spent and the
rollout is rolled back: the fleet ends as it was.

The OMniLeads agents run in objects mode against a small stand-in of the OMniLeads
application (docs/omnileads.md): the trunk and the outbound route to the PBX are
OMniLeads objects with the Redis hashes its dialplan reads, shown per site, and each
agent proves its route with a call dialled into OMniLeads' routes (cause 1). Last, an
inbound route is deleted in one site's OMniLeads and that node's check names the DID.

It exits 0 when all of that happened as described, and leaves nothing running
(unless --keep, which serves the fleet page, prints its address, and waits for
Ctrl-C so you can watch the rollouts in a browser and look around with the nats CLI).`,
		Example: `  pbxlab demo
  pbxlab demo --keep     # then, in another terminal, the nats commands it prints`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	cmd.Flags().IntVar(&f.sites, "sites", 6, "number of sites (scenarios cycle lan, cloud, docker)")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep NATS and the fleet running after the demo until Ctrl-C")
	cmd.Flags().StringVar(&f.dir, "dir", "", "work directory (default: a temp dir, removed at the end)")
	cmd.Flags().StringVar(&f.http, "http", "127.0.0.1:0", "with --keep: the fleet page's address (loopback; port 0 picks a free one)")
	return cmd
}

// demoCheck is one claim the demo makes and whether it held.
type demoCheck struct {
	claim string
	held  bool
	proof string
}

func runDemo(ctx context.Context, out io.Writer, f *demoFlags) (err error) {
	if f.sites < 4 {
		return opcli.Invalid(errors.New("--sites: the demo needs at least 4 sites (canary and two waves)"))
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pbxfleet-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	quiet := slog.New(slog.DiscardHandler)
	start := time.Now()

	cp, err := opcli.StartEmbedded(ctx, filepath.Join(dir, "nats"), "127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer cp.Close()
	nf := opcli.NATSFlags{URL: cp.URL, Timeout: 5 * time.Second}
	nc, js, err := nf.Connect(ctx, "pbxlab demo")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.Provision(ctx, js, bus.ProvisionConfig{}); err != nil {
		return err
	}
	svcCtx, stopSvc := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSvc(); wg.Wait() }()
	eng := orchestrator.New(js, nc, orchestrator.WithLogger(quiet), orchestrator.WithVersion(opcli.Semver(version)))
	wg.Add(1)
	go func() { defer wg.Done(); _ = eng.Serve(svcCtx) }()

	pageURL := ""
	if f.keep {
		url, stopWeb, err := opcli.StartWeb(ctx, opcli.WebFlags{Listen: f.http}, "", nc, js, quiet)
		if err != nil {
			return err
		}
		defer stopWeb()
		pageURL = url
		fmt.Fprintf(out, "fleet page: %s (open it now to watch the rollouts live)\n\n", pageURL)
	}

	sites := labfleet.Sites("demo", 0, f.sites)
	// Per-node keys, as `pbxfleet creds` makes them: every trunk secret is sealed
	// to its node, so NATS (and `nats kv get`) only ever sees ciphertext.
	keyDir := filepath.Join(dir, "creds")
	var nodeIDs []string
	for _, s := range sites {
		nodeIDs = append(nodeIDs, events.NodeID(s.ID, events.RolePBX), events.NodeID(s.ID, events.RoleOML))
	}
	if _, err := creds.Generate(keyDir, nodeIDs); err != nil {
		return err
	}
	fmt.Fprintf(out, "pbxlab demo: %d sites, each an Issabel lab host and an OMniLeads lab host (simulated Asterisk,\n", len(sites))
	fmt.Fprintf(out, "real SIP over loopback UDP), each driven by a real agent; NATS JetStream embedded at %s.\n\n", cp.URL)
	for _, s := range sites {
		fmt.Fprintf(out, "  %-8s %-6s PBX lab %-12s OMniLeads lab %s\n", s.ID, s.Scenario, s.PBXAddress, s.OMLAddress)
	}
	fleet, err := labfleet.Start(ctx, sites, labfleet.Options{
		Dir: filepath.Join(dir, "hosts"), NATSURL: cp.URL, Logger: quiet, KeyDir: keyDir,
		Deadlines:    node.Deadlines{Verify: 6 * time.Second, Probe: 4 * time.Second},
		PollInterval: 100 * time.Millisecond, StatusInterval: time.Second, QualifyTimeout: time.Second,
		// The OMniLeads agents keep the trunk and the outbound route as objects of
		// OMniLeads (objects mode) in a stand-in of the application that holds an
		// inbound route for the demo's DID (docs/omnileads.md).
		OMLObjects: true, InboundDIDs: []string{demoDID},
	})
	if err != nil {
		return err
	}
	defer fleet.Close()

	// Rollout 1: the trunk, canary then two waves.
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	waveSize := (len(sites) - 1 + 1) / 2
	strategy := orchestrator.Strategy{
		Canary: 1, WaveSize: waveSize, SiteDeadline: 45 * time.Second,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit, OnFailure: orchestrator.OnFailureRollback,
	}
	fmt.Fprintf(out, "\n[1/3] Rolling out the trunk: canary %s, then waves of %d sites; each agent writes its managed files,\n", sites[0].ID, waveSize)
	fmt.Fprintf(out, "      reloads, and proves the trunk (trunk object, forced qualify, dialplan, probe call to 99999).\n\n")
	first, err := demoRollout(ctx, out, nc, js, eng, sites, secrets, strategy, keyDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe OMniLeads side as OMniLeads sees it (objects of its application stand-in, with the Redis hashes its dialplan reads):\n")
	for _, s := range sites {
		id := events.NodeID(s.ID, events.RoleOML)
		for _, l := range fleet.OMLApp(id).Summary() {
			fmt.Fprintf(out, "  %-8s %s\n", s.ID, l)
		}
		fmt.Fprintf(out, "  %-8s inbound route for DID %s: OML:INR:%s NAME=%s\n", s.ID, demoDID, demoDID, fleet.OMLApp(id).Hash("OML:INR:" + demoDID)["NAME"])
	}
	fmt.Fprintf(out, "\nEach OMniLeads agent then proved its outbound route with a call dialled into OMniLeads' [oml-outr],\n")
	fmt.Fprintf(out, "as an agent's call would be, through the route and the trunk to the PBX's guarded probe number:\n")
	routeProbes := map[string]events.Check{}
	for _, s := range sites {
		id := events.NodeID(s.ID, events.RoleOML)
		st, _ := first.Site(s.ID)
		res, err := resultFor(ctx, js, id, nodeRevision(st, events.RoleOML))
		if err != nil {
			fmt.Fprintf(out, "  %-8s %v\n", s.ID, err)
			continue
		}
		for _, c := range res.Checks {
			if c.Name == node.CheckRouteProbe {
				routeProbes[s.ID] = c
				fmt.Fprintf(out, "  %-8s %s\n", s.ID, c.Detail)
			}
		}
	}

	// Rollout 2: rotate every secret; one OMniLeads host keeps its old config.
	stale := sites[2]
	staleNode := events.NodeID(stale.ID, events.RoleOML)
	rotated := map[string]string{}
	for _, s := range sites {
		rotated[s.ID] = labfleet.NewSecret()
	}
	fleet.Host(staleNode).SetFault(lab.FaultStale)
	fmt.Fprintf(out, "\n[2/3] Rotating every site's secret. The OMniLeads lab host of %s now silently keeps its running\n", stale.ID)
	fmt.Fprintf(out, "      configuration across reloads (its reload replies stay \"reloaded successfully\").\n\n")
	second, err := demoRollout(ctx, out, nc, js, eng, sites, rotated, strategy, keyDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nWhat the agents of %s reported (the raw CLI lines are in each result):\n", stale.ID)
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		printEvidence(ctx, out, js, events.NodeID(stale.ID, role), second)
	}

	// 3: an inbound route deleted in OMniLeads shows in the node's check, by DID.
	lost := sites[len(sites)-1]
	lostNode := events.NodeID(lost.ID, events.RoleOML)
	fmt.Fprintf(out, "\n[3/3] In OMniLeads at %s, someone deletes the inbound route of DID %s. The node's check\n", lost.ID, demoDID)
	fmt.Fprintf(out, "      (nats req pbxfleet.node.%s.check '{\"probe\":false}') reports it:\n", lostNode)
	fleet.OMLApp(lostNode).DeleteInboundRoute(demoDID)
	lostRep, lostErr := fleet.Agent(lostNode).Check(ctx, false)
	if lostErr != nil {
		fmt.Fprintf(out, "  %s: %v\n", lostNode, lostErr)
	}
	for _, c := range lostRep.Checks {
		if strings.HasPrefix(c.Name, "oml_") {
			mark := "pass"
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(out, "    %s %s: %s\n", mark, c.Name, c.Detail)
		}
	}

	checks := demoChecks(ctx, js, fleet, sites, first, second, stale.ID, secrets)
	checks = append(checks, objectsCheck(fleet, sites, first))
	checks = append(checks, routeProbeCheck(sites, routeProbes))
	checks = append(checks, inboundCheck(lostNode, lostRep, lostErr))
	checks = append(checks, sealedCheck(ctx, js, sites, secrets, rotated))
	fmt.Fprintf(out, "\nWhat the demo showed:\n")
	failed := 0
	for _, c := range checks {
		mark := "ok  "
		if !c.held {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(out, "  [%s] %s\n         %s\n", mark, c.claim, c.proof)
	}
	fmt.Fprintf(out, "\nLook deeper with the nats CLI (go install github.com/nats-io/natscli/nats@v0.5.1)%s:\n", map[bool]string{true: "", false: " — run `pbxlab demo --keep` to keep this fleet up"}[f.keep])
	results := storedResults(ctx, js, events.ResultSubjectPrefix+"."+stale.ID+".>")
	for _, c := range []string{
		"nats --server %[1]s kv ls pbxfleet_desired",
		"nats --server %[1]s kv get pbxfleet_desired %[2]s.pbx --raw",
		"nats --server %[1]s sub --stream PBXFLEET_RESULTS --all --count %[3]d --raw 'pbxfleet.result.%[2]s.>'",
		"nats --server %[1]s micro ls",
		"nats --server %[1]s req pbxfleet.node.%[2]s.oml.check '{\"probe\":true}'",
		"nats --server %[1]s req pbxfleet.rollout.status '{\"current\":true}'",
	} {
		fmt.Fprintf(out, "  "+c+"\n", cp.URL, stale.ID, results)
	}
	fmt.Fprintf(out, "\ndemo finished in %s: %d of %d claims held\n", time.Since(start).Round(100*time.Millisecond), len(checks)-failed, len(checks))
	if f.keep {
		fmt.Fprintf(out, "fleet page: %s\n", pageURL)
		fmt.Fprintf(out, "keeping NATS (%s), the fleet and the page up; Ctrl-C to stop\n", cp.URL)
		<-ctx.Done()
	}
	if failed > 0 {
		return fmt.Errorf("demo: %d claims did not hold", failed)
	}
	return nil
}

func demoRollout(ctx context.Context, out io.Writer, nc *nats.Conn, js jetstream.JetStream, eng *orchestrator.Engine,
	sites []labfleet.Site, secrets map[string]string, strategy orchestrator.Strategy, keyDir string) (orchestrator.Rollout, error) {
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), "", planner.Options{})
	if err != nil {
		return orchestrator.Rollout{}, fmt.Errorf("demo fleet: %w", err)
	}
	current, err := opcli.CurrentDesired(ctx, js)
	if err != nil {
		return orchestrator.Rollout{}, err
	}
	plan, err := planner.BuildPlan(spec, current)
	if err != nil {
		return orchestrator.Rollout{}, err
	}
	op := plan.RolloutPlan()
	if err := opcli.SealPlan(&op, keyDir, current); err != nil {
		return orchestrator.Rollout{}, err
	}
	var started orchestrator.StartResponse
	if err := opcli.Request(ctx, nc, events.RolloutStart, orchestrator.StartRequest{Plan: op, Strategy: strategy}, &started); err != nil {
		return orchestrator.Rollout{}, err
	}
	fmt.Fprintf(out, "  rollout %s started (nats req pbxfleet.rollout.start)\n", started.ID)
	r, err := opcli.Follow(ctx, eng, started.ID, out, false)
	if err != nil {
		return r, err
	}
	fmt.Fprintln(out)
	opcli.PrintRolloutTable(out, r)
	return r, nil
}

// printEvidence prints the checks of a node's latest result with their raw lines.
func printEvidence(ctx context.Context, out io.Writer, js jetstream.JetStream, nodeID string, r orchestrator.Rollout) {
	site, role, _ := events.ParseNodeID(nodeID)
	var rev uint64
	if s, ok := r.Site(site); ok {
		for _, n := range s.Nodes {
			if n.Role == role {
				rev = n.Revision
			}
		}
	}
	res, err := resultFor(ctx, js, nodeID, rev)
	if err != nil {
		fmt.Fprintf(out, "  %s: %v\n", nodeID, err)
		return
	}
	fmt.Fprintf(out, "  %s revision %d: %s", nodeID, res.Revision, res.Outcome)
	if res.Reason != "" {
		fmt.Fprintf(out, " — %s", res.Reason)
	}
	fmt.Fprintln(out)
	for _, c := range res.Checks {
		if strings.HasPrefix(c.Name, "rollback_") || c.Name == node.CheckDialplan || c.Name == node.CheckReload && c.Passed {
			continue
		}
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(out, "    %s %-12s %s\n", mark, c.Name, c.Detail)
		for _, l := range c.Raw {
			if strings.Contains(l, "<Aor") {
				continue
			}
			if strings.HasPrefix(l, "> ") || strings.Contains(l, "OK (") || strings.Contains(l, "Avail") ||
				strings.HasPrefix(l, "Value:") || strings.Contains(l, "Contact:") {
				fmt.Fprintf(out, "         %s\n", l)
			}
		}
	}
}

// resultFor finds a node's result for revision rev on the results stream.
func resultFor(ctx context.Context, js jetstream.JetStream, nodeID string, rev uint64) (events.Result, error) {
	site, role, _ := events.ParseNodeID(nodeID)
	c, err := js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubject(site, role)}})
	if err != nil {
		return events.Result{}, err
	}
	var found *events.Result
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			break
		}
		r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		if err == nil && r.Revision == rev {
			found = &r
		}
	}
	if found == nil {
		return events.Result{}, fmt.Errorf("no result for revision %d", rev)
	}
	return *found, nil
}

func demoChecks(ctx context.Context, js jetstream.JetStream, fleet *labfleet.Fleet, sites []labfleet.Site,
	first, second orchestrator.Rollout, staleSite string, oldSecrets map[string]string) []demoCheck {
	var checks []demoCheck
	c1 := first.Counters
	checks = append(checks, demoCheck{
		claim: "rollout 1 (canary + 2 waves) converged every site and every probe ended with cause 1",
		held:  first.Phase == orchestrator.PhaseSucceeded && c1.Converged == len(sites) && allProbes(first, "trunk_works"),
		proof: fmt.Sprintf("phase %s, %d/%d sites converged", first.Phase, c1.Converged, len(sites)),
	})
	st, _ := second.Site(staleSite)
	var pbx *orchestrator.NodeResult
	for _, n := range st.Nodes {
		if n.Role == events.RolePBX {
			pbx = n.Result
		}
	}
	pbxRes, _ := resultFor(ctx, js, events.NodeID(staleSite, events.RolePBX), nodeRevision(st, events.RolePBX))
	qualifyOK := false
	for _, c := range pbxRes.Checks {
		if c.Name == node.CheckQualify && c.Passed {
			qualifyOK = true
		}
	}
	caught := pbx != nil && pbx.Outcome == events.OutcomeRolledBack && pbxRes.Probe != nil && pbxRes.Probe.HangupCause == 21
	checks = append(checks, demoCheck{
		claim: fmt.Sprintf("on %s qualify stayed OK, yet the probe caught the secret mismatch (cause 21) and the node rolled back", staleSite),
		held:  caught && qualifyOK,
		proof: fmt.Sprintf("site %s: %s; pbx qualify passed=%v, probe=%s", staleSite, st.Outcome, qualifyOK, probeString(pbxRes.Probe)),
	})
	checks = append(checks, demoCheck{
		claim: "the failure budget was spent and rollout 2 was rolled back everywhere it reached",
		held:  second.Phase == orchestrator.PhaseRolledBack && second.Counters.RestoreFailed == 0 && second.Counters.Restored > 0,
		proof: fmt.Sprintf("phase %s, %d nodes restored, %d restore failures: %s", second.Phase, second.Counters.Restored, second.Counters.RestoreFailed, second.Message),
	})
	// The fleet ends as it was: every node's managed files carry the old secret
	// again and every node reports a healthy trunk.
	same, healthy := 0, 0
	var bad []string
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range sites {
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			id := events.NodeID(s.ID, role)
			// In objects mode the OMniLeads trunk is in OMniLeads' own trunks file.
			name := map[string]string{events.RolePBX: "pbxfleet_sip.conf", events.RoleOML: "oml_pjsip_trunks.conf"}[role]
			if b, err := os.ReadFile(filepath.Join(fleet.ConfigDir(id), name)); err == nil && strings.Contains(string(b), oldSecrets[s.ID]) {
				same++
			} else {
				bad = append(bad, id+" files")
			}
			for {
				st := fleet.Agent(id).Status(ctx)
				if st.Healthy {
					healthy++
					break
				}
				if time.Now().After(deadline) {
					bad = append(bad, id+" unhealthy: "+st.Detail)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	checks = append(checks, demoCheck{
		claim: "the fleet ends as it was: every node runs its original secret again and reports a healthy trunk",
		held:  same == 2*len(sites) && healthy == 2*len(sites),
		proof: fmt.Sprintf("%d/%d nodes back on the original secret, %d/%d healthy %s", same, 2*len(sites), healthy, 2*len(sites), strings.Join(bad, ", ")),
	})
	return checks
}

// demoDID is the DID of every demo site (labfleet.FleetYAML).
const demoDID = "098098"

// objectsCheck: every site's OMniLeads holds the trunk and the outbound route
// as its objects, the route's Redis hash points at the trunk's id, and the
// OMniLeads agents verified them before their probe ended with cause 1.
func objectsCheck(fleet *labfleet.Fleet, sites []labfleet.Site, first orchestrator.Rollout) demoCheck {
	ok := 0
	var bad []string
	for _, s := range sites {
		app := fleet.OMLApp(events.NodeID(s.ID, events.RoleOML))
		trunk, route := app.Hash("OML:TRUNK:1"), app.Hash("OML:OUTR:1")
		if trunk["NAME"] != "" && trunk["TECH"] == "PJSIP" && route["TRUNK-1"] == "1" && route["NAME"] != "" {
			ok++
		} else {
			bad = append(bad, s.ID)
		}
	}
	return demoCheck{
		claim: "every site's OMniLeads holds the trunk and the outbound route to the PBX as its own objects (OML:OUTR -> the trunk's id)",
		held:  ok == len(sites) && first.Phase == orchestrator.PhaseSucceeded && allProbes(first, "trunk_works"),
		proof: fmt.Sprintf("%d/%d sites with OML:TRUNK and OML:OUTR TRUNK-1 = the trunk, verified before each probe ended with cause 1 %s", ok, len(sites), strings.Join(bad, " ")),
	}
}

// routeProbeCheck: every OMniLeads agent's outbound-route probe ended with cause 1.
func routeProbeCheck(sites []labfleet.Site, probes map[string]events.Check) demoCheck {
	ok := 0
	var bad []string
	for _, s := range sites {
		c, found := probes[s.ID]
		if found && c.Passed && strings.Contains(c.Detail, ":1 ") {
			ok++
		} else {
			bad = append(bad, s.ID)
		}
	}
	return demoCheck{
		claim: "every site's outbound-route probe (dialled into OMniLeads' routes as an agent's call) ended with cause 1 at the PBX",
		held:  ok == len(sites),
		proof: fmt.Sprintf("%d/%d oml_route_probe checks passed %s", ok, len(sites), strings.Join(bad, " ")),
	}
}

// inboundCheck: the node whose DID lost its inbound route reports that DID.
func inboundCheck(nodeID string, rep node.CheckReport, err error) demoCheck {
	want := "oml_inbound_route " + demoDID
	held := false
	detail := ""
	for _, c := range rep.Checks {
		if c.Name == want {
			held, detail = !c.Passed && strings.Contains(c.Detail, "DID "+demoDID), c.Detail
		}
	}
	if err != nil {
		detail = err.Error()
	}
	return demoCheck{
		claim: fmt.Sprintf("%s, whose DID %s lost its inbound route in OMniLeads, reports that DID", nodeID, demoDID),
		held:  held && err == nil && !rep.Passed,
		proof: fmt.Sprintf("check %s failed: %s", want, detail),
	}
}

func nodeRevision(s orchestrator.SiteState, role string) uint64 {
	for _, n := range s.Nodes {
		if n.Role == role {
			return n.Revision
		}
	}
	return 0
}

func allProbes(r orchestrator.Rollout, verdict string) bool {
	for _, s := range r.Sites {
		for _, n := range s.Nodes {
			if n.Result == nil || n.Result.Probe != verdict {
				return false
			}
		}
	}
	return len(r.Sites) > 0
}

func probeString(p *events.Probe) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%s:%d (%s)", p.DialStatus, p.HangupCause, p.Verdict)
}

// sealedCheck reads every desired state and rollout record back from JetStream
// and checks that no trunk secret is there in clear.
func sealedCheck(ctx context.Context, js jetstream.JetStream, sites []labfleet.Site, secretSets ...map[string]string) demoCheck {
	var stored []byte
	for _, bucket := range []string{events.BucketDesired, events.BucketRollouts, events.BucketStatus} {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			continue
		}
		_ = fleethealth.EachEntry(ctx, kv, func(e jetstream.KeyValueEntry) { stored = append(stored, e.Value()...) })
	}
	leaks, sealed := 0, strings.Count(string(stored), `"sealed_secret"`)
	for _, set := range secretSets {
		for _, s := range sites {
			if strings.Contains(string(stored), set[s.ID]) {
				leaks++
			}
		}
	}
	return demoCheck{
		claim: "no trunk secret is in clear on NATS: each is sealed to its node's key (nats kv get shows ciphertext)",
		held:  leaks == 0 && sealed > 0,
		proof: fmt.Sprintf("%d sealed secrets in the stored desired states and rollout records, %d in clear", sealed, leaks),
	}
}

// storedResults counts the results stored on subjects matching filter (the
// count a `nats sub --count` should wait for).
func storedResults(ctx context.Context, js jetstream.JetStream, filter string) int {
	s, err := js.Stream(ctx, events.StreamResults)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}
