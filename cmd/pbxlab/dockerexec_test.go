package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frame is one frame of the engine's multiplexed stream.
func frame(stream byte, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

func TestDemuxDockerStream(t *testing.T) {
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	big := strings.Repeat("x", 70000)
	tests := []struct {
		name           string
		in             []byte
		stdout, stderr string
		err            string
	}{
		{name: "empty", in: nil},
		{name: "stdout and stderr interleaved",
			in:     join(frame(1, "Name/username\n"), frame(2, "WARNING\n"), frame(1, "0 sip peers\n")),
			stdout: "Name/username\n0 sip peers\n", stderr: "WARNING\n"},
		{name: "empty frame", in: join(frame(1, ""), frame(1, "a")), stdout: "a"},
		{name: "frame larger than a buffer", in: frame(1, big), stdout: big},
		{name: "truncated header", in: []byte{1, 0, 0}, err: "frame header"},
		{name: "truncated payload", in: frame(1, "abcdef")[:10], err: "frame of 6 bytes"},
		{name: "unknown stream", in: frame(7, "x"), err: "unknown stream 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := demuxDockerStream(bytes.NewReader(tt.in), &out, &errOut)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.stdout, out.String())
			assert.Equal(t, tt.stderr, errOut.String())
		})
	}
}

func TestNewDockerClient(t *testing.T) {
	tests := []struct {
		host, socket string
		unsupported  bool
	}{
		{host: "", socket: defaultDockerSocket},
		{host: "unix:///run/user/1000/docker.sock", socket: "/run/user/1000/docker.sock"},
		{host: "tcp://10.0.0.1:2375", unsupported: true},
		{host: "ssh://me@host", unsupported: true},
		{host: "unix://", unsupported: true},
	}
	for _, tt := range tests {
		c, err := newDockerClient(tt.host)
		if tt.unsupported {
			assert.ErrorIs(t, err, errDockerUnsupported, tt.host)
			continue
		}
		require.NoError(t, err, tt.host)
		assert.Equal(t, tt.socket, c.socket)
	}
}

func TestDockerShimUsage(t *testing.T) {
	noEngine := func(string) string { return "unix://" + filepath.Join(t.TempDir(), "none.sock") }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no verb", args: nil, want: "only `docker exec CONTAINER COMMAND...`"},
		{name: "other verb", args: []string{"ps", "-a"}, want: `"ps" is not supported`},
		{name: "no command", args: []string{"exec", "oml-asterisk-prodenv"}, want: "usage: docker exec"},
		{name: "tty", args: []string{"exec", "-it", "oml-asterisk-prodenv", "asterisk", "-rx", "x"}, want: "-t and -d are not supported"},
		{name: "unknown flag", args: []string{"exec", "--privileged", "c", "true"}, want: "unknown flag"},
		{name: "no engine", args: []string{"exec", "oml-asterisk-prodenv", "asterisk", "-rx", "x"}, want: "none.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dockerShim(context.Background(), tt.args, noEngine, &out, &errOut)
			assert.Equal(t, 1, code)
			assert.Empty(t, out.String())
			assert.Contains(t, errOut.String(), tt.want)
		})
	}
}

// requireEngine skips the test when no Docker engine answers `docker info`, or
// when the engine is not on a Unix socket (all the docker shim speaks).
func requireEngine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Docker engine: skipped with -short")
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		t.Skipf("DOCKER_HOST=%s is not a unix socket: the docker shim speaks only to unix sockets", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine reachable (`docker info`: %v): %s", err, firstLine(string(out)))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// docker runs the docker CLI and returns its trimmed output.
func docker(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	require.NoError(t, err, "docker %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// buildLabImage builds a scratch image holding this package's pbxfleet binary
// (also as /usr/sbin/asterisk), tagged for this test only, and removes it at
// cleanup. It skips when the binary has no `lab` command (main.go not wired).
func buildLabImage(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "pbxfleet")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	if out, err := exec.CommandContext(ctx, bin, "lab", "host", "--help").CombinedOutput(); err != nil {
		t.Skipf("this pbxfleet has no `lab host` command (main.go must register newLabCommand and call shimMain): %s", firstLine(string(out)))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rootfs", "tmp"), 0o1777))
	dockerfile := "FROM scratch\nCOPY rootfs/ /\nCOPY pbxfleet /usr/bin/pbxfleet\nCOPY pbxfleet /usr/sbin/asterisk\nENTRYPOINT [\"/usr/bin/pbxfleet\"]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	tag := "pbxfleet-dockerexec-test:" + randomHex(t)
	docker(ctx, t, "build", "--quiet", "--tag", tag, dir)
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", "--force", tag).Run()
	})
	return tag
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func TestDockerExecAgainstEngine(t *testing.T) {
	requireEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	image := buildLabImage(ctx, t)
	name := "pbxfleet-dockerexec-test-" + randomHex(t)
	docker(ctx, t, "run", "--detach", "--name", name, image,
		"lab", "host", "--role", "pbx", "--address", "127.0.0.1", "--config-dir", "/etc/asterisk", "--stock")
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "--force", "--volumes", name).Run() })

	client, err := newDockerClient(os.Getenv("DOCKER_HOST"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, err := client.Exec(ctx, name, execOptions{Cmd: []string{"asterisk", "-rx", "core show version"}}, &bytes.Buffer{}, &bytes.Buffer{})
		return err == nil && code == 0
	}, 30*time.Second, 100*time.Millisecond, "the lab host in %s answers", name)

	tests := []struct {
		name           string
		cmd            []string
		code           int
		stdout, stderr string
	}{
		{name: "asterisk -rx", cmd: []string{"asterisk", "-rx", "sip show peers"}, stdout: "0 sip peers [Monitored: 0 online"},
		{name: "output on stderr and status 1", cmd: []string{"asterisk", "-s", "/nope.ctl", "-rx", "sip show peers"}, code: 1,
			stderr: "Unable to connect to remote asterisk (does /nope.ctl exist?)"},
		{name: "long output", cmd: []string{"asterisk", "-rx", "dialplan show"}, stdout: "from-internal"},
		// The engine reports a program it cannot start in the output stream.
		{name: "no such program", cmd: []string{"/usr/bin/nothing-here"}, code: 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, err := client.Exec(ctx, name, execOptions{Cmd: tt.cmd}, &out, &errOut)
			require.NoError(t, err)
			if tt.code == 126 {
				// runc reports a missing program as 126 or 127 depending on version.
				assert.Contains(t, []int{126, 127}, code)
				assert.Contains(t, out.String()+errOut.String(), "no such file or directory")
			} else {
				assert.Equal(t, tt.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			}
			assert.Contains(t, out.String(), tt.stdout)
			assert.Contains(t, errOut.String(), tt.stderr)
		})
	}

	t.Run("shim with the seed's command line", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := dockerShim(ctx, []string{"exec", name, "asterisk", "-rx", "sip show peers"}, os.Getenv, &out, &errOut)
		assert.Equal(t, 0, code, errOut.String())
		assert.Contains(t, out.String(), "sip peers")
	})
	t.Run("no such container", func(t *testing.T) {
		_, err := client.Exec(ctx, name+"-none", execOptions{Cmd: []string{"true"}}, &bytes.Buffer{}, &bytes.Buffer{})
		var apiErr *dockerAPIError
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, 404, apiErr.Status)
		assert.Contains(t, apiErr.Error(), "No such container")
		var out, errOut bytes.Buffer
		assert.Equal(t, 1, dockerShim(ctx, []string{"exec", name + "-none", "true"}, os.Getenv, &out, &errOut))
		assert.Contains(t, errOut.String(), "Error response from daemon: No such container")
	})
	t.Run("stopped container", func(t *testing.T) {
		docker(ctx, t, "stop", "--time", "5", name)
		_, err := client.Exec(ctx, name, execOptions{Cmd: []string{"asterisk", "-rx", "sip show peers"}}, &bytes.Buffer{}, &bytes.Buffer{})
		var apiErr *dockerAPIError
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, 409, apiErr.Status)
		assert.Equal(t, "0", docker(ctx, t, "inspect", "--format", "{{.State.ExitCode}}", name), "the lab host exits 0 on SIGTERM")
	})
}
