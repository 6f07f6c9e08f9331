// Package labctl lets a lab host's CLI be reached from another process, the way
// `asterisk -rx` reaches a running Asterisk through its control socket
// (/var/run/asterisk/asterisk.ctl). `pbxlab lab` serves each lab host on a Unix
// socket; the `asterisk` shim (the pbxlab binary called as "asterisk", or
// `pbxlab lab rx`) is the client, so a separately started pbx-node or
// agents-node drives a lab host with an ordinary command prefix.
package labctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSocket is where Asterisk keeps its control socket; the shim uses it
// when no other path is given.
const DefaultSocket = "/var/run/asterisk/asterisk.ctl"

// NotRunning is what `asterisk -rx` prints on stderr, with exit status 1, when
// no Asterisk listens on the control socket (docs/asterisk.md#reloads-and-cli-replies).
func NotRunning(socket string) string {
	return fmt.Sprintf("Unable to connect to remote asterisk (does %s exist?)\n", socket)
}

// Runner is one host's CLI (a *lab.Host).
type Runner interface {
	Run(ctx context.Context, command string) (stdout string, exitCode int, err error)
}

// maxCommand bounds one request line.
const maxCommand = 4096

// Serve answers CLI requests for r on a Unix socket at path until ctx ends. Each
// connection carries one command line; the reply is the exit status on the
// first line, then the output.
func Serve(ctx context.Context, path string, r Runner, log *slog.Logger) error {
	_ = os.Remove(path) // a stale socket from a killed lab
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("serve lab cli on %s: %w", path, err)
	}
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer func() {
		wg.Wait()
		_ = os.Remove(path)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept lab cli on %s: %w", path, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := answer(ctx, conn, r); err != nil && log != nil {
				log.Debug("lab cli request", "socket", path, "err", err)
			}
		}()
	}
}

func answer(ctx context.Context, conn net.Conn, r Runner) error {
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(io.LimitReader(conn, maxCommand)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read command: %w", err)
	}
	out, code, err := r.Run(ctx, strings.TrimRight(line, "\r\n"))
	if err != nil {
		out, code = err.Error()+"\n", 1
	}
	_, err = fmt.Fprintf(conn, "%d\n%s", code, out)
	return err
}

// ErrBadReply means the server's reply had no exit status line.
var ErrBadReply = errors.New("bad reply from lab cli")

// Run sends one command to the socket and returns the output and exit status,
// like `asterisk -rx`: when nothing listens it returns the not-running text and 1.
func Run(ctx context.Context, socket, command string) (string, int, error) {
	if strings.ContainsAny(command, "\r\n") {
		return "", 1, fmt.Errorf("lab cli: a command is one line")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return NotRunning(socket), 1, nil
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", 1, fmt.Errorf("lab cli %s: %w", socket, err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		return "", 1, fmt.Errorf("lab cli %s: %w: %v", socket, ErrBadReply, err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(status))
	if err != nil {
		return "", 1, fmt.Errorf("lab cli %s: %w: %q", socket, ErrBadReply, status)
	}
	out, err := io.ReadAll(br)
	if err != nil {
		return "", 1, fmt.Errorf("lab cli %s: %w", socket, err)
	}
	return string(out), code, nil
}
