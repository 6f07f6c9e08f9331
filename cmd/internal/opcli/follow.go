package opcli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Follow watches a rollout until it ends or pauses, printing progress lines (and
// a bar on a terminal); Ctrl-C stops watching only.
func Follow(ctx context.Context, eng *orchestrator.Engine, id string, out io.Writer, bar bool) (orchestrator.Rollout, error) {
	updates, err := eng.Watch(ctx, id)
	if err != nil {
		return orchestrator.Rollout{}, err
	}
	lines := NewRolloutLines(out)
	var pb *progressbar.ProgressBar
	if bar && term.IsTerminal(int(os.Stderr.Fd())) {
		pb = progressbar.NewOptions(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("sites"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	var last orchestrator.Rollout
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "stopped watching; rollout %s goes on in the control plane (pbxfleet rollout watch %s)\n", id, id)
			return last, &ExitError{Code: 130, Err: ctx.Err()}
		case r, ok := <-updates:
			if !ok {
				return last, fmt.Errorf("watch rollout %s: the watch ended", id)
			}
			last = r
			if pb != nil {
				pb.ChangeMax(r.Counters.Sites)
				_ = pb.Set(r.Counters.Converged + r.Counters.Failed + r.Counters.Unreachable + r.Counters.Skipped + r.Counters.Cancelled)
			}
			lines.Update(r)
			if r.Phase.Terminal() || r.Phase == orchestrator.PhasePaused {
				if pb != nil {
					_ = pb.Finish()
				}
				return r, nil
			}
		}
	}
}
