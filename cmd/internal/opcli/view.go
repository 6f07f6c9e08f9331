package opcli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// RolloutLines prints plain progress lines: one per site whose outcome changed
// since the previous state, and one per new message. It is what a log or a pipe
// shows; on a terminal the progress bar is drawn as well.
type RolloutLines struct {
	w       io.Writer
	outcome map[string]orchestrator.SiteOutcome
	restore map[string]bool
	msgs    int
	phase   orchestrator.Phase
}

// NewRolloutLines returns a RolloutLines writing to w.
func NewRolloutLines(w io.Writer) *RolloutLines {
	return &RolloutLines{w: w, outcome: map[string]orchestrator.SiteOutcome{}, restore: map[string]bool{}}
}

// Update prints what changed since the previous state.
func (l *RolloutLines) Update(r orchestrator.Rollout) {
	for _, m := range r.Messages[min(l.msgs, len(r.Messages)):] {
		fmt.Fprintf(l.w, "  %s  %s\n", m.At.Local().Format("15:04:05"), m.Message)
	}
	l.msgs = len(r.Messages)
	for _, s := range r.Sites {
		if prev := l.outcome[s.Site]; prev != s.Outcome && s.Outcome != orchestrator.SitePending {
			l.outcome[s.Site] = s.Outcome
			fmt.Fprintf(l.w, "  %s  wave %s  %-14s %-11s %s\n", time.Now().Format("15:04:05"), waveLabel(s.Wave), s.Site, s.Outcome, siteDetail(s))
		}
		// A site's restore is told once every covered node has its end: a
		// result, or a note saying why it gets none.
		settled, covered := true, false
		for _, n := range s.Nodes {
			switch {
			case n.RestoreNote != "":
				covered = true
			case n.RestoreRevision == 0:
			case n.Restore == nil:
				settled = false
			default:
				covered = true
			}
		}
		if settled && covered && !l.restore[s.Site] {
			l.restore[s.Site] = true
			fmt.Fprintf(l.w, "  %s  rollback %-14s restored: %s\n", time.Now().Format("15:04:05"), s.Site, restoreDetail(s))
		}
	}
	if r.Phase != l.phase {
		l.phase = r.Phase
		fmt.Fprintf(l.w, "  %s  rollout %s: %s\n", time.Now().Format("15:04:05"), r.ID, r.Phase)
	}
}

// waveLabel shows a site's wave as every message does, counted from 1; a
// skipped site has none.
func waveLabel(w int) string {
	if w == 0 {
		return "-"
	}
	return fmt.Sprint(w)
}

// siteDetail says what each node reported, in a few words.
func siteDetail(s orchestrator.SiteState) string {
	var parts []string
	for _, n := range s.Nodes {
		if n.Result == nil {
			if n.Put {
				parts = append(parts, fmt.Sprintf("%s r%d: waiting", n.Role, n.Revision))
			}
			continue
		}
		p := fmt.Sprintf("%s r%d %s", n.Role, n.Revision, n.Result.Outcome)
		if n.Result.TrunkState != "" {
			p += fmt.Sprintf(" (trunk %s %.1fms, probe %s)", n.Result.TrunkState, n.Result.RTTMS, orDash(n.Result.Probe))
		}
		if n.Result.Reason != "" {
			p += ": " + textclip.Clip(n.Result.Reason, 140)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 && s.Reason != "" {
		return s.Reason
	}
	return strings.Join(parts, "; ")
}

func restoreDetail(s orchestrator.SiteState) string {
	var parts []string
	for _, n := range s.Nodes {
		switch {
		case n.Restore != nil:
			parts = append(parts, fmt.Sprintf("%s r%d %s", n.Role, n.RestoreRevision, n.Restore.Outcome))
		case n.RestoreNote != "":
			// Why this node gets no restore (nothing before the rollout, never
			// put, or someone else changed its key since).
			parts = append(parts, fmt.Sprintf("%s not restored: %s", n.Role, restoreNoteText(n.RestoreNote)))
		}
	}
	return strings.Join(parts, "; ")
}

// restoreNoteText says a restore note in words.
func restoreNoteText(note string) string {
	switch note {
	case orchestrator.ReasonNoPrevious:
		return "it had no desired state before this rollout"
	case orchestrator.ReasonNotPut:
		return "this rollout never put it"
	case orchestrator.ReasonSuperseded:
		return "its desired key changed since (another rollout or a hand put); left as it is"
	}
	return note
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PrintRolloutTable prints the per-site table that ends a rollout: outcome,
// trunk state and RTT, probe verdict, revision and duration per node.
func PrintRolloutTable(w io.Writer, r orchestrator.Rollout) {
	tw := tablewriter.NewWriter(w)
	tw.Header("SITE", "WAVE", "OUTCOME", "NODE", "REVISION", "RESULT", "TRUNK", "RTT", "PROBE", "TOOK")
	sites := slices.Clone(r.Sites)
	for _, s := range sites {
		for i, n := range s.Nodes {
			site, wave, outcome := "", "", ""
			if i == 0 {
				site, wave, outcome = s.Site, waveLabel(s.Wave), string(s.Outcome)
			}
			res, trunk, rtt, probe, took := "-", "-", "-", "-", "-"
			rev := fmt.Sprint(n.Revision)
			nr := n.Result
			if n.Restore != nil {
				nr = n.Restore
				rev = fmt.Sprintf("%d (restored %d)", n.RestoreRevision, n.PrevRevision)
			}
			if nr != nil {
				res = string(nr.Outcome)
				trunk = orDash(nr.TrunkState)
				rtt = fmt.Sprintf("%.1f ms", nr.RTTMS)
				probe = orDash(nr.Probe)
				took = (time.Duration(nr.DurationMS) * time.Millisecond).String()
			}
			_ = tw.Append(site, wave, outcome, n.Role, rev, res, trunk, rtt, probe, took)
		}
	}
	_ = tw.Render()
	c := r.Counters
	fmt.Fprintf(w, "rollout %s %s: %d sites, %d converged, %d failed, %d unreachable, %d skipped",
		r.ID, r.Phase, c.Sites, c.Converged, c.Failed, c.Unreachable, c.Skipped)
	if c.Cancelled > 0 {
		fmt.Fprintf(w, ", %d cancelled", c.Cancelled)
	}
	if c.InFlight > 0 {
		fmt.Fprintf(w, ", %d in flight", c.InFlight)
	}
	if c.Pending > 0 {
		fmt.Fprintf(w, ", %d not started", c.Pending)
	}
	if c.Restored > 0 || c.RestoreFailed > 0 {
		fmt.Fprintf(w, ", %d restored, %d restore failed", c.Restored, c.RestoreFailed)
	}
	fmt.Fprintln(w)
	if r.Reason != "" {
		fmt.Fprintf(w, "reason: %s: %s\n", r.Reason, r.Message)
	}
}
