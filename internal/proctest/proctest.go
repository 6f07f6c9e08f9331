// Package proctest runs the project's binaries as child processes for tests
// that exercise them as an operator would: it builds them once, starts each
// with its output in a log file, and ends only the processes it started, by
// PID, when the test ends.
package proctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Binaries are the paths of the project's commands built by Build.
type Binaries struct {
	PBXFleet   string
	PBXLab     string
	PBXNode    string
	AgentsNode string
	// NATSServer is the upstream nats-server (the module's own dependency);
	// empty unless Build was asked for it.
	NATSServer string
}

// Build builds pbxfleet, pbxlab, pbx-node and agents-node (and, with natsServer, the
// upstream nats-server) into dir, without the race detector: it watches the
// test process, not these.
func Build(ctx context.Context, dir string, natsServer bool) (Binaries, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	builds := [][]string{{"build", "-o", dir + string(filepath.Separator),
		"github.com/pbxfleet/pbxfleet/cmd/pbxfleet",
		"github.com/pbxfleet/pbxfleet/cmd/pbxlab",
		"github.com/pbxfleet/pbxfleet/cmd/pbx-node",
		"github.com/pbxfleet/pbxfleet/cmd/agents-node"}}
	if natsServer {
		builds = append(builds, []string{"build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"})
	}
	for _, args := range builds {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	}
	b := Binaries{
		PBXFleet:   filepath.Join(dir, "pbxfleet"),
		PBXLab:     filepath.Join(dir, "pbxlab"),
		PBXNode:    filepath.Join(dir, "pbx-node"),
		AgentsNode: filepath.Join(dir, "agents-node"),
	}
	if natsServer {
		b.NATSServer = filepath.Join(dir, "nats-server")
	}
	return b, nil
}

// Proc is a child process the test started; it is ended (by its PID only)
// when the test ends, and its output is kept in a log file shown on failure.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // cmd.Wait's error, once done is closed
}

// Start starts bin with args, its stdout and stderr in a log file.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &Proc{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, filepath.Base(bin), strings.Join(args, " "))
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- last lines of %s's log ---\n%s", name, Tail(p.Output(), 40))
		}
	})
	return p
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process if it still runs: SIGTERM, then SIGKILL after 10 s.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Kill sends SIGKILL to the process (by its PID) and waits until it is gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	require.False(t, p.Exited(), "%s ended before the test killed it:\n%s", p.Name, Tail(p.Output(), 20))
	require.NoError(t, syscall.Kill(p.PID(), syscall.SIGKILL))
	p.Wait(t, 30*time.Second)
}

// Wait waits for the process to end, failing the test after d.
func (p *Proc) Wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s (pid %d) still runs after %s", p.Name, p.PID(), d)
	}
}

// KilledBy returns the signal that ended the process, if a signal did.
func (p *Proc) KilledBy() (syscall.Signal, bool) {
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// Err waits for the process to end and returns how it ended (nil: exit 0).
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// ExitCode returns the process's exit code once it ended (-1 when a signal
// ended it).
func (p *Proc) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// ShortDir returns a fresh directory with a short path (Unix socket paths are
// limited to 107 bytes), removed when the test ends.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pf")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// DialNATS connects to url (one or more, comma separated) as name with opts
// (e.g. credentials), retrying for up to 30 s while a server the test started
// comes up, then reconnecting forever; the connection is closed when the test
// ends.
func DialNATS(t testing.TB, name, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)...)
		if err == nil {
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			return nc, js
		}
		if ctx.Err() != nil {
			t.Fatalf("connect to %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Eventually polls cond every 100 ms until it reports true and returns how
// long that took, or fails the test with cond's last word after d. It bounds
// a wait; it asserts nothing about time.
func Eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		last = detail
		if time.Since(start) > d {
			t.Fatalf("%s: not reached within %s (last: %s)", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
