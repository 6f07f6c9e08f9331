package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestServeHTTPWithAuth runs `serve --auth DIR --http 127.0.0.1:0`: it prints
// the page's address and where the operator token is; the page refuses
// requests without the token, and with it the buttons reach the orchestrator
// service (here: no rollout yet, 404), as the operator.
func TestServeHTTPWithAuth(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "creds")
	_, err := creds.Generate(keys, []string{"s-1.pbx", "s-1.oml"})
	require.NoError(t, err)

	lines := clitest.Start(t, newRootCommand(), "serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--auth", keys, "--http", "127.0.0.1:0", "--log-level", "warn")
	pageLine := clitest.WaitLine(t, lines, 20*time.Second, func(l string) bool { return strings.HasPrefix(l, "fleet page: ") }, nil)
	clitest.Drain(lines)
	m := regexp.MustCompile(`^fleet page: (http://127\.0\.0\.1:\d+/) \(operator token in (.+)\)$`).FindStringSubmatch(pageLine)
	require.NotNil(t, m, pageLine)
	assert.Equal(t, filepath.Join(keys, "web.token"), m[2])
	b, err := os.ReadFile(m[2])
	require.NoError(t, err)
	token := strings.TrimSpace(string(b))
	assert.NotContains(t, pageLine, token, "the token is not printed")
	st, err := os.Stat(m[2])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	resp, err := http.Get(m[1] + "api/snapshot")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	get := func(method, path string, body string) (int, string) {
		return pageCall(t, m[1], method, path, token, body)
	}
	require.Eventually(t, func() bool { code, _ := get("GET", "api/snapshot", ""); return code == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	// The page comes up after the orchestrator service: it answers at once.
	code, body := get("POST", "api/rollout/pause", `{"current":true}`)
	assert.Equal(t, http.StatusNotFound, code, "the orchestrator answered (no rollout yet): %s", body)
	assert.Contains(t, body, "rollout")
}

// TestWebCommand runs `pbxfleet web` against a running control plane's NATS
// (a real server with the orchestrator service): with --token-file it makes
// the token file (0600, never printed), refuses requests without the token,
// serves the page with it and its buttons reach the orchestrator; with
// --read-only its buttons are refused by the page itself.
func TestWebCommand(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- orchestrator.New(srv.JS, srv.Conn).Serve(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-served) })

	tokenFile := filepath.Join(t.TempDir(), "web.token")
	lines := clitest.Start(t, newRootCommand(), "web", "--nats-url", srv.URL, "--listen", "127.0.0.1:0",
		"--token-file", tokenFile, "--log-level", "warn")
	pageLine := clitest.WaitLine(t, lines, 20*time.Second, func(l string) bool { return strings.HasPrefix(l, "fleet page: ") }, nil)
	clitest.Drain(lines)
	m := regexp.MustCompile(`^fleet page: (http://127\.0\.0\.1:\d+/) \(operator token in (.+)\)$`).FindStringSubmatch(pageLine)
	require.NotNil(t, m, pageLine)
	assert.Equal(t, tokenFile, m[2])
	b, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	token := strings.TrimSpace(string(b))
	require.NotEmpty(t, token)
	assert.NotContains(t, pageLine, token, "the token is not printed")
	st, err := os.Stat(tokenFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	call := func(base, method, path, token string) (int, string) {
		return pageCall(t, base, method, path, token, `{"current":true}`)
	}
	code, _ := call(m[1], "GET", "api/snapshot", "")
	assert.Equal(t, http.StatusUnauthorized, code, "no token, no page")
	code, body := call(m[1], "GET", "api/snapshot", token)
	assert.Equal(t, http.StatusOK, code, body)
	code, body = call(m[1], "POST", "api/rollout/pause", token)
	assert.Equal(t, http.StatusNotFound, code, "the orchestrator answered (no rollout yet): %s", body)

	readOnly := clitest.Start(t, newRootCommand(), "web", "--nats-url", srv.URL, "--listen", "127.0.0.1:0", "--read-only", "--log-level", "warn")
	roLine := clitest.WaitLine(t, readOnly, 20*time.Second, func(l string) bool { return strings.HasPrefix(l, "fleet page: ") }, nil)
	clitest.Drain(readOnly)
	ro := regexp.MustCompile(`^fleet page: (http://127\.0\.0\.1:\d+/) \(read-only\)$`).FindStringSubmatch(roLine)
	require.NotNil(t, ro, roLine)
	code, body = call(ro[1], "POST", "api/rollout/pause", "")
	assert.Equal(t, http.StatusForbidden, code, body)
	assert.Contains(t, body, "read-only")
}

// pageCall sends one request to the fleet page at base as the page's own
// script does (the action header), with token when not empty, and returns the
// status and the body.
func pageCall(t *testing.T, base, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Pbxfleet-Action", "1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
