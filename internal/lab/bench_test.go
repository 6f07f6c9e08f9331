package lab

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// prepareSites writes the configuration of n site pairs (what the agents would
// have written) and makes their hosts, not started.
func prepareSites(b *testing.B, n int, instant bool) ([]*pair, error) {
	var net *Network
	if instant {
		net = NewNetwork()
	}
	pairs := make([]*pair, n)
	for i := range pairs {
		// Site i: PBX 127.2.x.y, OML 127.3.x.y, away from the tests' 127.0.x.y.
		x, y := i/250, i%250+1
		s := site{pbxAddr: fmt.Sprintf("127.2.%d.%d", x, y), omlAddr: fmt.Sprintf("127.3.%d.%d", x, y),
			instant: instant, network: net}
		s.defaults()
		p := &pair{pbxDir: b.TempDir(), omlDir: b.TempDir()}
		writePBX(b, p.pbxDir, s)
		writeOML(b, p.omlDir, s)
		var err error
		if p.oml, err = NewHost(Config{Role: RoleOML, Name: fmt.Sprint("site", i, ".oml"), ConfigDir: p.omlDir,
			Address: s.omlAddr, Instant: instant, Network: net}); err != nil {
			return pairs, err
		}
		if p.pbx, err = NewHost(Config{Role: RolePBX, Name: fmt.Sprint("site", i, ".pbx"), ConfigDir: p.pbxDir,
			Address: s.pbxAddr, Instant: instant, Network: net}); err != nil {
			return pairs, err
		}
		pairs[i] = p
	}
	return pairs, nil
}

// runSites starts every site pair, qualifies both sides of every site and probes
// both directions, 64 sites at a time (each lab host is independent, as real
// hosts are); it returns the first failure.
func runSites(pairs []*pair) error {
	n := len(pairs)
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		work  = make(chan *pair)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for range min(64, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := benchOneSite(ctx, p); err != nil {
					fail(err)
				}
			}
		}()
	}
	for _, p := range pairs {
		work <- p
	}
	close(work)
	wg.Wait()
	return first
}

// benchOneSite starts one site's two hosts and does what an agent pair does to
// verify the trunk.
func benchOneSite(ctx context.Context, p *pair) error {
	if err := p.oml.Start(ctx); err != nil {
		return err
	}
	if err := p.pbx.Start(ctx); err != nil {
		return err
	}
	run := func(h *Host, cmd string) string {
		out, _, _ := h.Run(ctx, cmd)
		return out
	}
	run(p.pbx, "sip qualify peer omnileads")
	run(p.oml, "pjsip qualify issabel")
	deadline := time.Now().Add(pollBound)
	for !strings.Contains(run(p.pbx, "sip show peers"), "OK (") || !strings.Contains(run(p.oml, "pjsip show endpoints"), " Avail ") {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not qualified", p.pbx.Name())
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, h := range []*Host{p.pbx, p.oml} {
		run(h, "channel originate Local/99999@pbxfleet-probe application Wait 1")
	}
	for _, h := range []*Host{p.pbx, p.oml} {
		for {
			v := run(h, "database get pbxfleet probe")
			if v == "Value: CHANUNAVAIL:1\n" {
				break
			}
			if strings.HasPrefix(v, "Value: ") && v != "Value: started\n" {
				return fmt.Errorf("%s: probe %q", h.Name(), v)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: probe pending", h.Name())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// BenchmarkLabSites measures N lab site pairs in one process: start, qualify and a
// probe call in each direction per site (writing the configuration is not timed).
// It reports sites/s and the heap and system memory each running site adds.
func BenchmarkLabSites(b *testing.B) {
	for _, instant := range []bool{false, true} {
		for _, n := range []int{10, 100, 1000} {
			mode := "sip"
			if instant {
				mode = "instant"
			}
			b.Run(fmt.Sprintf("%s/sites=%d", mode, n), func(b *testing.B) {
				var sites, heap, sys float64
				var elapsed time.Duration
				for b.Loop() {
					runtime.GC()
					var m0, m1 runtime.MemStats
					runtime.ReadMemStats(&m0)
					pairs, err := prepareSites(b, n, instant)
					if err == nil {
						start := time.Now()
						err = runSites(pairs)
						elapsed += time.Since(start)
					}
					runtime.ReadMemStats(&m1)
					for _, p := range pairs {
						if p != nil {
							_ = p.pbx.Close()
							_ = p.oml.Close()
						}
					}
					if err != nil {
						b.Fatal(err)
					}
					sites += float64(n)
					heap += float64(int64(m1.HeapInuse)-int64(m0.HeapInuse)) / float64(n)
					sys += float64(int64(m1.Sys)-int64(m0.Sys)) / float64(n)
				}
				iters := sites / float64(n)
				b.ReportMetric(sites/elapsed.Seconds(), "sites/s")
				b.ReportMetric(heap/iters, "heap-B/site")
				b.ReportMetric(sys/iters, "sys-B/site")
			})
		}
	}
}
