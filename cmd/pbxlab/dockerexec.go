package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// defaultDockerSocket is where the Docker engine listens when DOCKER_HOST is unset.
const defaultDockerSocket = "/var/run/docker.sock"

// errDockerUnsupported is returned for what the minimal docker client does not do.
var errDockerUnsupported = errors.New("not supported by pbxfleet's docker shim")

// dockerAPIError is an error answer of the Docker engine.
type dockerAPIError struct {
	// Status is the HTTP status code (404: no such container, 409: not running).
	Status int
	// Message is the engine's message.
	Message string
}

func (e *dockerAPIError) Error() string {
	return fmt.Sprintf("Error response from daemon: %s", e.Message)
}

// dockerClient is a minimal Docker Engine API client over the engine's Unix
// socket: just enough for `docker exec`. Paths carry no API version, so the
// engine answers with its own current version (the exec API has not changed
// since 1.24).
type dockerClient struct {
	socket string
	http   *http.Client
}

// newDockerClient returns a client for dockerHost (the value of DOCKER_HOST:
// empty for the default socket, or unix:///path), or an error wrapping
// errDockerUnsupported for any other scheme.
func newDockerClient(dockerHost string) (*dockerClient, error) {
	socket := defaultDockerSocket
	if dockerHost != "" {
		p, ok := strings.CutPrefix(dockerHost, "unix://")
		if !ok || p == "" {
			return nil, fmt.Errorf("DOCKER_HOST %q: only unix:///path sockets are %w", dockerHost, errDockerUnsupported)
		}
		socket = p
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &dockerClient{socket: socket, http: &http.Client{Transport: tr}}, nil
}

// execOptions are the parameters of one exec.
type execOptions struct {
	// Cmd is the command and its arguments (no shell).
	Cmd []string
	// User, WorkingDir and Env are the exec's user, directory and extra environment.
	User, WorkingDir string
	Env              []string
}

// Exec runs opts.Cmd in container like `docker exec`: it creates the exec,
// starts it, copies its stdout and stderr to the writers, and returns the exit
// status. It returns a *dockerAPIError when the engine refuses (no such
// container, container not running) and an error naming the socket when the
// engine cannot be reached.
func (c *dockerClient) Exec(ctx context.Context, container string, opts execOptions, stdout, stderr io.Writer) (int, error) {
	if len(opts.Cmd) == 0 {
		return -1, fmt.Errorf("docker exec %s: no command", container)
	}
	var created struct {
		ID string `json:"Id"`
	}
	createReq := map[string]any{
		"AttachStdin": false, "AttachStdout": true, "AttachStderr": true, "Tty": false,
		"Cmd": opts.Cmd, "User": opts.User, "WorkingDir": opts.WorkingDir, "Env": opts.Env,
	}
	if err := c.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(container)+"/exec", createReq, http.StatusCreated, &created); err != nil {
		return -1, fmt.Errorf("docker exec %s: create: %w", container, err)
	}
	if err := c.start(ctx, created.ID, stdout, stderr); err != nil {
		return -1, fmt.Errorf("docker exec %s: start: %w", container, err)
	}
	code, err := c.exitCode(ctx, created.ID)
	if err != nil {
		return -1, fmt.Errorf("docker exec %s: inspect: %w", container, err)
	}
	return code, nil
}

// start starts exec id attached and demultiplexes its output until it ends.
func (c *dockerClient) start(ctx context.Context, id string, stdout, stderr io.Writer) error {
	body, err := json.Marshal(map[string]bool{"Detach": false, "Tty": false})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/exec/"+url.PathEscape(id)+"/start", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("engine at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	// Without a TTY the engine multiplexes stdout and stderr in frames.
	if err := demuxDockerStream(resp.Body, stdout, stderr); err != nil {
		return fmt.Errorf("read output: %w", err)
	}
	return nil
}

// exitCode waits (briefly: the stream has ended) until exec id is no longer
// running and returns its exit code.
func (c *dockerClient) exitCode(ctx context.Context, id string) (int, error) {
	for attempt := 0; ; attempt++ {
		var st struct {
			Running  bool `json:"Running"`
			ExitCode int  `json:"ExitCode"`
		}
		if err := c.call(ctx, http.MethodGet, "/exec/"+url.PathEscape(id)+"/json", nil, http.StatusOK, &st); err != nil {
			return -1, err
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		if attempt >= 100 {
			return -1, fmt.Errorf("exec %s still running after its output ended", id)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
	}
}

// call sends a JSON request (in may be nil) and decodes the JSON answer into
// out when the status is want.
func (c *dockerClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("engine at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return apiError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// apiError reads the engine's {"message": ...} error answer.
func apiError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(data))
		if m.Message == "" {
			m.Message = resp.Status
		}
	}
	return &dockerAPIError{Status: resp.StatusCode, Message: m.Message}
}

// demuxDockerStream copies the engine's multiplexed stream to stdout and
// stderr: frames of an 8-byte header (stream type: 0 stdin, 1 stdout, 2
// stderr; three zero bytes; big-endian payload length) and the payload. It
// returns nil at a clean end of the stream.
func demuxDockerStream(r io.Reader, stdout, stderr io.Writer) error {
	br := bufio.NewReader(r)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("frame header: %w", err)
		}
		var w io.Writer
		switch hdr[0] {
		case 0, 1:
			w = stdout
		case 2:
			w = stderr
		default:
			return fmt.Errorf("frame header: unknown stream %d", hdr[0])
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.CopyN(w, br, n); err != nil {
			return fmt.Errorf("frame of %d bytes: %w", n, err)
		}
	}
}

// dockerShim is `docker` for containers without the docker CLI: only `docker
// exec [-i] [-u USER] [-w DIR] [-e K=V]... CONTAINER CMD...`, through the engine
// socket of DOCKER_HOST (getenv) or /var/run/docker.sock. It returns the exit
// status: the command's own, or 1 with a message when docker itself failed,
// like the docker CLI.
func dockerShim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "docker (pbxfleet shim): "+format+"\n", a...)
		return 1
	}
	if len(args) == 0 || args[0] != "exec" {
		verb := ""
		if len(args) > 0 {
			verb = args[0]
		}
		return fail("%q is %v: only `docker exec CONTAINER COMMAND...` is", verb, errDockerUnsupported)
	}
	fs := pflag.NewFlagSet("docker exec", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	var opts execOptions
	fs.BoolP("interactive", "i", false, "ignored: no stdin is attached")
	tty := fs.BoolP("tty", "t", false, "not supported")
	detach := fs.BoolP("detach", "d", false, "not supported")
	fs.StringVarP(&opts.User, "user", "u", "", "user")
	fs.StringVarP(&opts.WorkingDir, "workdir", "w", "", "working directory")
	fs.StringArrayVarP(&opts.Env, "env", "e", nil, "environment variables")
	if err := fs.Parse(args[1:]); err != nil {
		return fail("exec: %v", err)
	}
	if *tty || *detach {
		return fail("exec: -t and -d are %v", errDockerUnsupported)
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return fail("exec: usage: docker exec [-i] [-u USER] [-w DIR] [-e K=V] CONTAINER COMMAND [ARG...]")
	}
	client, err := newDockerClient(getenv("DOCKER_HOST"))
	if err != nil {
		return fail("%v", err)
	}
	opts.Cmd = rest[1:]
	code, err := client.Exec(ctx, rest[0], opts, stdout, stderr)
	if err != nil {
		var apiErr *dockerAPIError
		if errors.As(err, &apiErr) {
			fmt.Fprintln(stderr, apiErr.Error())
			return 1
		}
		return fail("%v", err)
	}
	return code
}
