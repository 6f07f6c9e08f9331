package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// Check names, in the order they run.
const (
	CheckReload   = "reload"
	CheckObject   = "trunk_object"
	CheckQualify  = "qualify"
	CheckDialplan = "dialplan"
	CheckProbe    = "probe"
)

// Probe verdicts (docs/asterisk.md#the-probe-call).
const (
	// VerdictTrunkWorks: cause 1, the far side authenticated us and found no such
	// number: the trunk carries calls in this direction.
	VerdictTrunkWorks = "trunk_works"
	// VerdictAuthOrFarTrunk: cause 21, the far side rejected the call: wrong
	// credentials, or the far side has no trunk for us.
	VerdictAuthOrFarTrunk = "auth_or_far_trunk"
	// VerdictAnswered: the probe number exists on the far side; it must not.
	VerdictAnswered = "answered"
	// VerdictNoResult: the dialplan never recorded an outcome.
	VerdictNoResult = "no_result"
	// VerdictOther: any other cause.
	VerdictOther = "other"
)

// Verification is the outcome of verifying the trunk on one host.
type Verification struct {
	Checks []events.Check
	Trunk  events.TrunkState
	Probe  *events.Probe
}

// Passed reports whether every check passed.
func (v Verification) Passed() bool {
	for _, c := range v.Checks {
		if !c.Passed {
			return false
		}
	}
	return len(v.Checks) > 0
}

// FirstFailure returns the first failed check, if any.
func (v Verification) FirstFailure() (events.Check, bool) {
	for _, c := range v.Checks {
		if !c.Passed {
			return c, true
		}
	}
	return events.Check{}, false
}

// verifier runs the checks of one side through the CLI.
type verifier struct {
	side    Side
	cli     CLI
	cfg     Config
	metrics *agentMetrics // nil: not recorded
}

// run executes one CLI command with the command deadline and fails on the
// not-running answer, which is the only case where the exit status matters
// (docs/asterisk.md#reloads-and-cli-replies).
func (v verifier) run(ctx context.Context, command string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, v.cfg.Deadlines.Command)
	defer cancel()
	out, code, err := v.cli.Run(cctx, command)
	if err != nil {
		return out, fmt.Errorf("%s: %w", command, err)
	}
	if asterisk.IsNotRunning([]byte(out), code) {
		return out, fmt.Errorf("%s: %w", command, ErrAsteriskDown)
	}
	return out, nil
}

// reload runs the side's reload commands and checks each reply. A good reply
// proves only that the command ran (docs/asterisk.md#reloads-and-cli-replies); the checks that follow prove
// the configuration.
func (v verifier) reload(ctx context.Context) events.Check {
	defer v.metrics.observePhase(events.PhaseReload, time.Now())
	c := events.Check{Name: CheckReload, Passed: true}
	var details []string
	for _, cmd := range v.side.Reloads {
		out, err := v.run(ctx, cmd)
		c.Raw = append(c.Raw, rawLines(cmd, out)...)
		if err == nil {
			err = asterisk.ParseReload(cmd, []byte(out))
		}
		if err != nil {
			c.Passed = false
			details = append(details, err.Error())
			break
		}
		details = append(details, cmd+": ok")
	}
	c.Detail = strings.Join(details, "; ")
	return c
}

// verify runs the checks after a reload: the trunk object, qualify and the
// managed dialplan, under one verify deadline; it stops at the first failure that
// makes the next checks meaningless. With probe it then places the probe call
// (once) under a deadline of its own; status refreshes never place calls.
func (v verifier) verify(ctx context.Context, t events.Trunk, rev uint64, probe bool) Verification {
	res := v.checks(ctx, t, rev)
	if !probe || !res.Passed() {
		return res
	}
	pc, pr := v.probe(ctx, t)
	res.Checks = append(res.Checks, pc)
	res.Probe = pr
	return res
}

// checks runs the trunk object, qualify and dialplan checks of revision rev.
func (v verifier) checks(ctx context.Context, t events.Trunk, rev uint64) Verification {
	defer v.metrics.observePhase(events.PhaseVerify, time.Now())
	var res Verification
	name := v.side.trunkName(t)
	vctx, cancel := context.WithTimeout(ctx, v.cfg.Deadlines.Verify)
	defer cancel()

	obj := v.checkObject(vctx, name, v.side.wantMarker(rev))
	res.Checks = append(res.Checks, obj)
	if !obj.Passed {
		res.Trunk = events.TrunkState{State: "missing"}
		return res
	}
	q, st := v.checkQualify(vctx, name)
	res.Checks = append(res.Checks, q)
	res.Trunk = st
	if !q.Passed {
		return res
	}
	res.Checks = append(res.Checks, v.checkDialplan(vctx, t))
	return res
}

// probe places the probe call once, under its own deadline.
func (v verifier) probe(ctx context.Context, t events.Trunk) (events.Check, *events.Probe) {
	pctx, cancel := context.WithTimeout(ctx, v.cfg.Deadlines.Probe)
	defer cancel()
	return v.checkProbe(pctx, t.ProbeNumber)
}

// qualifyGrace is how long a chan_sip peer that was never qualified (UNKNOWN) is
// read before it passes as pending: chan_sip's own first qualify of a new peer,
// and its 4 s timeout (2 × qualifymax), fit in it on a PBX with few peers.
const qualifyGrace = 5 * time.Second

// outOfTime says that a check ran out of time, which is not what it checks
// failing: "qualify took the whole deadline" must not read as "the dialplan is
// missing".
func (v verifier) outOfTime(check string) string {
	return fmt.Sprintf("ran out of time: the verify deadline (%s) ended before %s could be read; nothing was found wrong with it", v.cfg.Deadlines.Verify, check)
}

// checkObject polls for the trunk object until it exists or the deadline
// passes: `sip reload` returns before chan_sip has read the new peers (with 3,000
// peers a new one appeared 0.4 s after the command returned), so one look right
// after the reload is not an answer. Nor is an existing peer of that name: it
// may be the previous revision's, still running (a changed secret does not show),
// so on chan_sip it also waits for the peer to carry want, its revision's
// description (an unmarked peer, written before pbxfleet marked them, passes).
func (v verifier) checkObject(ctx context.Context, name, want string) events.Check {
	cmd := v.side.showCommand(name)
	c := events.Check{Name: CheckObject}
	var (
		out, marker string
		err         error
	)
	for {
		out, err = v.run(ctx, cmd)
		if err == nil {
			marker, err = v.side.parseShow([]byte(out))
		}
		if err == nil && want != "" && marker != "" && marker != want {
			err = fmt.Errorf("%w: it still runs another revision (%q, want %q)", ErrVerifyFailed, marker, want)
		}
		if err == nil || errors.Is(err, ErrAsteriskDown) || wait.Sleep(ctx, v.cfg.PollInterval) != nil {
			break
		}
	}
	c.Raw = rawLines(cmd, v.side.objectEvidence(out))
	switch {
	case err == nil:
		c.Passed = true
		c.Detail = fmt.Sprintf("%s %s exists", v.side.objectKind(), name)
	case marker != "" && want != "" && marker != want:
		c.Detail = fmt.Sprintf("%s %s still runs another revision %s after the reload (%q, want %q): the reload did not land",
			v.side.objectKind(), name, v.cfg.Deadlines.Verify, marker, want)
	case ctx.Err() != nil && !errors.Is(err, ErrAsteriskDown):
		c.Detail = fmt.Sprintf("%s %s does not exist %s after the reload: %v", v.side.objectKind(), name, v.cfg.Deadlines.Verify, err)
	default:
		c.Detail = fmt.Sprintf("%s %s does not exist after the reload: %v", v.side.objectKind(), name, err)
	}
	return c
}

// checkQualify reads the trunk's qualify state until it says the far side
// answers, or the deadline passes.
//
// On res_pjsip it first forces a qualify (`pjsip qualify`): res_pjsip keeps its
// own schedule whatever the answer. On chan_sip it never does: a forced `sip
// qualify peer` that gets no answer cancels the peer's scheduled qualify for
// good, so the peer keeps its last state (OK) while the far side is down, and a
// peer forced while down stays UNREACHABLE after it returns. pbx-node only reads
// chan_sip's own view, which the reload re-armed. A new peer shows UNKNOWN until
// chan_sip's first qualify of it, which after a reload may come minutes later on
// a PBX with thousands of peers (it qualifies them one after another): UNKNOWN is
// not a verdict either way, so it passes as pending and the probe call decides.
// It is still read for qualifyGrace first: on a PBX with few peers chan_sip's
// first qualify comes within a second of the reload, and its verdict says more
// than a failed call would. UNKNOWN/NonQual on res_pjsip after a forced qualify,
// UNREACHABLE, LAGGED and
// Unavail are polled until the deadline: LAGGED means chan_sip refuses calls
// (cause 20) just as UNREACHABLE does.
func (v verifier) checkQualify(ctx context.Context, name string) (events.Check, events.TrunkState) {
	c := events.Check{Name: CheckQualify}
	if v.side.forceQualify {
		qcmd := v.side.qualify(name)
		if out, err := v.run(ctx, qcmd); err != nil {
			c.Raw = rawLines(qcmd, out)
			c.Detail = err.Error()
			return c, events.TrunkState{State: "unknown"}
		}
	}
	var (
		st      events.TrunkState
		lastOut string
		lastErr error
		started = time.Now()
	)
	for {
		out, err := v.run(ctx, v.side.ListCommand)
		if ctx.Err() != nil && lastOut != "" {
			break // the deadline cut this read short: the previous one is the evidence
		}
		lastOut, lastErr = out, err
		if err == nil {
			var pending bool
			st, pending, err = v.side.trunkState([]byte(out), name)
			lastErr = err
			switch {
			case err == nil && st.Reachable:
				c.Passed = true
				c.Detail = fmt.Sprintf("%s answers qualify: %s (%.3g ms)", name, st.State, st.RTTMS)
				c.Raw = rawLines(v.side.ListCommand, trunkLines(out, name))
				return c, st
			case err == nil && pending && !v.side.forceQualify && time.Since(started) >= min(qualifyGrace, v.cfg.Deadlines.Verify/2):
				c.Passed = true
				c.Detail = fmt.Sprintf("%s is %s: chan_sip has not qualified it yet (it qualifies peers one after another after a reload, on its own schedule, which pbxfleet never forces); the probe call decides", name, st.State)
				c.Raw = rawLines(v.side.ListCommand, trunkLines(out, name))
				return c, st
			}
		}
		if errors.Is(lastErr, ErrAsteriskDown) || wait.Sleep(ctx, v.cfg.PollInterval) != nil {
			break
		}
	}
	c.Raw = rawLines(v.side.ListCommand, trunkLines(lastOut, name))
	switch {
	case lastErr != nil && ctx.Err() != nil && lastOut == "":
		c.Detail = v.outOfTime("the qualify state")
	case lastErr != nil:
		c.Detail = fmt.Sprintf("%s: %v", name, lastErr)
	case st.State == "LAGGED":
		c.Detail = fmt.Sprintf("%s is %s at the deadline: it answers later than its qualifymax, and chan_sip refuses calls to it (cause 20)", name, st.State)
	default:
		c.Detail = fmt.Sprintf("%s did not answer qualify before the deadline: %s", name, st.State)
	}
	if st.State == "" {
		st.State = "unknown"
	}
	return c, st
}

func (v verifier) checkDialplan(ctx context.Context, t events.Trunk) events.Check {
	c := events.Check{Name: CheckDialplan, Passed: true}
	var missing []string
	want := v.side.dialplan(t)
	for _, ctxName := range sortedKeys(want) {
		cmd := "dialplan show " + ctxName
		out, err := v.run(ctx, cmd)
		if err != nil && ctx.Err() != nil {
			c.Passed = false
			c.Detail = v.outOfTime("the dialplan of " + ctxName)
			c.Raw = append(c.Raw, rawLines(cmd, firstLines(out, 4))...)
			return c
		}
		var show asterisk.DialplanShow
		if err == nil {
			show, err = asterisk.ParseDialplanShow([]byte(out))
		}
		if err != nil {
			c.Raw = append(c.Raw, rawLines(cmd, firstLines(out, 4))...)
			missing = append(missing, fmt.Sprintf("context %s: %v", ctxName, err))
			continue
		}
		for _, ext := range want[ctxName] {
			if _, ok := show.Find(ctxName, ext); !ok {
				missing = append(missing, ext+"@"+ctxName)
			}
		}
	}
	if len(missing) > 0 {
		c.Passed = false
		c.Detail = "managed extensions missing from the running dialplan: " + strings.Join(missing, ", ")
		return c
	}
	c.Detail = "managed extensions present"
	return c
}

var probeValueRE = regexp.MustCompile(`^([A-Z]+):([0-9]{1,3})$`)

// checkProbe dials the probe number over the trunk once, through the managed
// probe context, and reads the outcome back from AstDB (docs/asterisk.md#the-probe-call). Cause 1
// proves the trunk. It is never retried: a failed call is an authentication
// failure in the far side's log, which fail2ban counts (its stock asterisk filter
// bans after a handful); the caller places it only once the far side runs the
// revision it is proving (ProbeOnOrder).
func (v verifier) checkProbe(ctx context.Context, number string) (events.Check, *events.Probe) {
	c := events.Check{Name: CheckProbe}
	pr := &events.Probe{Number: number, Verdict: VerdictNoResult}
	raw, err := v.probeOnce(ctx, number, asterisk.ProbeContext, asterisk.ProbeDBFamily, asterisk.ProbeDBKey, pr)
	v.metrics.probe(pr.Verdict)
	c.Raw = raw
	switch {
	case err != nil:
		c.Detail = err.Error()
	case pr.Verdict == VerdictTrunkWorks:
		c.Passed = true
		c.Detail = fmt.Sprintf("probe to %s ended %s:%d (unallocated number after authentication): the trunk carries calls in this direction", number, pr.DialStatus, pr.HangupCause)
	default:
		c.Detail = probeFailure(pr)
	}
	return c, pr
}

// checkRouteProbe dials number into the route probe's context (OMniLeads'
// [oml-outr], as an agent's call) and reads the outcome like the trunk probe's:
// cause 1 proves that OMniLeads' outbound route reaches the far side over the
// trunk with the probe number (farNumber) as sent. Placed once, after the
// trunk probe passed.
func (v verifier) checkRouteProbe(ctx context.Context, number, farNumber string) events.Check {
	c := events.Check{Name: CheckRouteProbe}
	pr := &events.Probe{Number: number, Verdict: VerdictNoResult}
	pctx, cancel := context.WithTimeout(ctx, v.cfg.Deadlines.Probe)
	defer cancel()
	raw, err := v.probeOnce(pctx, number, asterisk.RouteProbeContext, asterisk.ProbeDBFamily, asterisk.RouteProbeDBKey, pr)
	c.Raw = raw
	switch {
	case err != nil:
		c.Detail = "outbound route: " + err.Error()
	case pr.Verdict == VerdictTrunkWorks:
		c.Passed = true
		c.Detail = fmt.Sprintf("%s dialled through OMniLeads' outbound routes ended %s:%d at the far side's probe number %s: the outbound route works", number, pr.DialStatus, pr.HangupCause, farNumber)
	default:
		c.Detail = "outbound route: " + probeFailure(pr)
	}
	return c
}

func (v verifier) probeOnce(ctx context.Context, number, dpContext, fam, key string, pr *events.Probe) ([]string, error) {
	pctx, cancel := context.WithTimeout(ctx, v.cfg.Deadlines.Probe)
	defer cancel()
	var raw []string
	put := fmt.Sprintf("database put %s %s pending", fam, key)
	if out, err := v.run(pctx, put); err != nil {
		return rawLines(put, out), err
	}
	orig := fmt.Sprintf("channel originate Local/%s@%s application Wait 1", number, dpContext)
	out, err := v.run(pctx, orig)
	raw = append(raw, rawLines(orig, out)...)
	if err != nil {
		return raw, err
	}
	get := fmt.Sprintf("database get %s %s", fam, key)
	for {
		out, err := v.run(pctx, get)
		if err != nil {
			return append(raw, rawLines(get, out)...), err
		}
		val, err := asterisk.ParseDatabaseGet([]byte(out))
		if err == nil {
			if m := probeValueRE.FindStringSubmatch(val); m != nil {
				cause, _ := strconv.Atoi(m[2])
				pr.DialStatus, pr.HangupCause = m[1], cause
				pr.Verdict = verdict(m[1], cause)
				return append(raw, rawLines(get, out)...), nil
			}
		}
		if wait.Sleep(pctx, v.cfg.PollInterval) != nil {
			pr.DialStatus, pr.HangupCause, pr.Verdict = "", 0, VerdictNoResult
			return append(raw, rawLines(get, out)...), fmt.Errorf("probe to %s recorded no outcome within %s (last %q): %w",
				number, v.cfg.Deadlines.Probe, strings.TrimSpace(out), ErrVerifyFailed)
		}
	}
}

func verdict(dialStatus string, cause int) string {
	switch {
	case dialStatus == "ANSWER":
		return VerdictAnswered
	case cause == 1:
		return VerdictTrunkWorks
	case cause == 21:
		return VerdictAuthOrFarTrunk
	}
	return VerdictOther
}

func probeFailure(pr *events.Probe) string {
	switch pr.Verdict {
	case VerdictAuthOrFarTrunk:
		return fmt.Sprintf("probe to %s ended %s:%d (call rejected): the far side refused our credentials or has no trunk for us", pr.Number, pr.DialStatus, pr.HangupCause)
	case VerdictAnswered:
		return fmt.Sprintf("probe to %s was answered: the probe number exists on the far side; choose one that exists on neither side", pr.Number)
	}
	return fmt.Sprintf("probe to %s ended %s:%d", pr.Number, pr.DialStatus, pr.HangupCause)
}

func (s Side) objectKind() string {
	if s.Role == events.RolePBX {
		return "chan_sip peer"
	}
	return "pjsip endpoint"
}

// rawLines prefixes the command so a result shows what was asked and what came back.
func rawLines(cmd, out string) []string {
	lines := []string{"> " + cmd}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	return lines
}

func firstLines(out string, n int) string {
	lines := strings.SplitN(out, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// trunkLines keeps the lines of a list output that mention the trunk, so raw
// evidence stays small on a PBX with many peers.
func trunkLines(out, name string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, name) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return firstLines(out, 4)
	}
	return strings.Join(keep, "\n")
}

func sortedKeys(m map[string][]string) []string { return slices.Sorted(maps.Keys(m)) }
