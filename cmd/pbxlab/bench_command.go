package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

type benchFlags struct {
	sites      int
	modes      []string
	cpuProfile string
}

func newBenchCommand() *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a full rollout of N lab sites in one process",
		Long: `bench runs, in one process, an embedded NATS server, N lab sites (an Issabel and an
OMniLeads lab host each, both driven by real agents) and the orchestrator, and rolls the
trunk out to every site in a single wave. It prints the wall time, sites per second,
the put-to-result latency of the nodes (p50/p99, from the desired put's server
timestamp to the result's), NATS messages per site and the process's peak memory.

It runs twice by default: "sip", where the lab hosts qualify and probe with real SIP
over loopback UDP, and "instant", where the lab's checks are computed without packets,
so the orchestration and agent overhead shows on its own.`,
		Example: `  pbxlab bench --sites 1000
  pbxlab bench --sites 200 --mode instant`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, m := range f.modes {
				if m != "sip" && m != "instant" {
					return opcli.Invalid(fmt.Errorf("--mode %q: want sip or instant", m))
				}
			}
			// Two loopback addresses per site: 127.<1..250>.<1..250>.2/.3.
			if f.sites < 1 || f.sites > 10000 {
				return opcli.Invalid(fmt.Errorf("--sites %d: want 1..10000", f.sites))
			}
			if len(f.modes) == 1 {
				if f.cpuProfile != "" {
					pf, err := os.Create(f.cpuProfile)
					if err != nil {
						return err
					}
					defer pf.Close()
					if err := pprof.StartCPUProfile(pf); err != nil {
						return err
					}
					defer pprof.StopCPUProfile()
				}
				return runBench(cmd.Context(), cmd.OutOrStdout(), f.sites, f.modes[0] == "instant")
			}
			// One process per mode, so each mode's memory figures start clean.
			self, err := os.Executable()
			if err != nil {
				return err
			}
			for _, m := range f.modes {
				c := exec.CommandContext(cmd.Context(), self, "bench", "--sites", strconv.Itoa(f.sites), "--mode", m)
				c.Stdout, c.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
				if err := c.Run(); err != nil {
					return fmt.Errorf("bench --mode %s: %w", m, err)
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&f.sites, "sites", 1000, "number of lab sites (two agents and two lab hosts each)")
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (with a single --mode)")
	cmd.Flags().StringSliceVar(&f.modes, "mode", []string{"sip", "instant"}, "sip (real SIP checks) and/or instant (checks without packets)")
	return cmd
}

// benchReport is what one bench run measured.
type benchReport struct {
	mode          string
	sites         int
	setup         time.Duration
	wall          time.Duration
	converged     int
	p50, p99, max time.Duration
	msgsPerSite   float64
	peakRSS       uint64
	baseRSS       uint64
	peakHeap      uint64
}

func runBench(ctx context.Context, out io.Writer, n int, instant bool) error {
	mode := map[bool]string{true: "instant", false: "sip"}[instant]
	// 2,000 simulated hosts share this machine's one disk, where each real host
	// has its own: the agents' fsyncs would measure that contention, not pbxfleet.
	// Memory-backed /dev/shm gives each simulated host a disk of its own speed.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "pbxfleet-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	runtime.GC()
	rep := benchReport{mode: mode, sites: n, baseRSS: rss("VmRSS")}
	stopSampler := sampleHeap(&rep.peakHeap)
	sampling := true
	defer func() {
		if sampling {
			stopSampler()
		}
	}()

	quiet := slog.New(slog.DiscardHandler)
	setupStart := time.Now()
	cp, err := opcli.StartEmbedded(ctx, filepath.Join(dir, "nats"), "127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer cp.Close()
	nf := opcli.NATSFlags{URL: cp.URL, Timeout: 5 * time.Second}
	nc, js, err := nf.Connect(ctx, "pbxlab bench")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.Provision(ctx, js, bus.ProvisionConfig{}); err != nil {
		return err
	}
	sites := labfleet.Sites("b", 0, n)
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), "", planner.Options{})
	if err != nil {
		return err
	}
	plan, err := planner.BuildPlan(spec, nil)
	if err != nil {
		return err
	}
	fleet, err := labfleet.Start(ctx, sites, labfleet.Options{
		Dir: filepath.Join(dir, "hosts"), NATSURL: cp.URL, Instant: instant, Logger: quiet, ShareConn: true,
		Deadlines:    node.Deadlines{Verify: 60 * time.Second, Probe: 15 * time.Second, Command: 30 * time.Second},
		PollInterval: 100 * time.Millisecond, StatusInterval: time.Minute, QualifyTimeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer fleet.Close()
	eng := orchestrator.New(js, nc, orchestrator.WithLogger(quiet))
	rep.setup = time.Since(setupStart)

	varz0, _ := cp.Server().Varz(nil)
	start := time.Now()
	r, err := eng.Start(ctx, plan.RolloutPlan(), orchestrator.Strategy{
		WaveSize: n, SiteDeadline: 5 * time.Minute, MaxFailed: n, MaxUnreachable: n,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit,
	})
	if err != nil {
		return err
	}
	if r, err = eng.Run(ctx, r.ID); err != nil {
		return err
	}
	rep.wall = time.Since(start)
	varz1, _ := cp.Server().Varz(nil)
	rep.converged = r.Counters.Converged
	rep.msgsPerSite = float64((varz1.InMsgs-varz0.InMsgs)+(varz1.OutMsgs-varz0.OutMsgs)) / float64(n)
	lat, err := putToResult(ctx, js)
	if err != nil {
		return err
	}
	if len(lat) > 0 {
		rep.p50, rep.p99, rep.max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	rep.peakRSS = rss("VmHWM")
	stopSampler()
	sampling = false
	printBench(out, rep, r)
	if rep.converged != n {
		return fmt.Errorf("bench %s: %d of %d sites converged (%s)", mode, rep.converged, n, r.Message)
	}
	return nil
}

// putToResult returns, sorted, each node's time from its desired put to its
// result, both from the server's timestamps.
func putToResult(ctx context.Context, js jetstream.JetStream) ([]time.Duration, error) {
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	if err != nil {
		return nil, err
	}
	put := map[string]time.Time{}
	if err := fleethealth.EachEntry(ctx, kv, func(e jetstream.KeyValueEntry) { put[e.Key()] = e.Created() }); err != nil {
		return nil, err
	}
	c, err := js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for len(lat) < len(put) {
		msg, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		// A node reports awaiting_probe, then its final result: the latter
		// ends the apply.
		if res, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject()); err != nil || !res.Outcome.Final() {
			continue
		}
		node := strings.TrimPrefix(msg.Subject(), events.ResultSubjectPrefix+".")
		if t, ok := put[node]; ok {
			lat = append(lat, md.Timestamp.Sub(t))
		}
	}
	slices.Sort(lat)
	return lat, nil
}

func printBench(out io.Writer, rep benchReport, r orchestrator.Rollout) {
	fmt.Fprintf(out, "bench mode=%s sites=%d agents=%d lab_hosts=%d (GOMAXPROCS=%d)\n", rep.mode, rep.sites, 2*rep.sites, 2*rep.sites, runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "  setup (lab hosts, agents, NATS):  %s\n", rep.setup.Round(time.Millisecond))
	fmt.Fprintf(out, "  rollout wall time:                %s (%s)\n", rep.wall.Round(time.Millisecond), r.Phase)
	fmt.Fprintf(out, "  sites per second:                 %.0f\n", float64(rep.sites)/rep.wall.Seconds())
	fmt.Fprintf(out, "  converged:                        %d/%d\n", rep.converged, rep.sites)
	fmt.Fprintf(out, "  put-to-result p50 / p99 / max:    %s / %s / %s\n", rep.p50.Round(time.Millisecond), rep.p99.Round(time.Millisecond), rep.max.Round(time.Millisecond))
	fmt.Fprintf(out, "  NATS messages per site:           %.1f (in+out at the server)\n", rep.msgsPerSite)
	fmt.Fprintf(out, "  peak RSS:                         %.1f MiB (%.0f KiB per site above the %.1f MiB baseline)\n",
		mib(rep.peakRSS), float64(rep.peakRSS-min(rep.baseRSS, rep.peakRSS))/1024/float64(rep.sites), mib(rep.baseRSS))
	fmt.Fprintf(out, "  peak Go heap in use:              %.1f MiB (%.0f KiB per site)\n", mib(rep.peakHeap), float64(rep.peakHeap)/1024/float64(rep.sites))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rss reads a memory figure (VmRSS, VmHWM) of this process from /proc, in bytes;
// 0 where /proc is not there.
func rss(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// sampleHeap records the peak HeapInuse every 50 ms until stopped.
func sampleHeap(peak *uint64) (stop func()) {
	var p atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.Load() {
				p.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				*peak = p.Load()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
