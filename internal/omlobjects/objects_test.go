package omlobjects

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

// fakeShell records every argv and script it is given and answers with the
// state it keeps, as the management shell would.
type fakeShell struct {
	mu      sync.Mutex
	argv    [][]string
	reqs    []Request
	stdin   []string
	version string
	state   State
	// syncErr, when set, is reported by apply (the synchronizer failed) and
	// the Redis hashes are not written.
	syncErr string
}

func (f *fakeShell) run(_ context.Context, argv []string, stdin []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.argv = append(f.argv, argv)
	f.stdin = append(f.stdin, string(stdin))
	req, err := ReadRequest(stdin)
	if err != nil {
		return nil, err
	}
	f.reqs = append(f.reqs, req)
	a := Answer{Version: f.version}
	switch req.Action {
	case "apply":
		tr := req.Trunk
		tr.ID = 7
		f.state.Trunk = &tr
		rt := *req.Route
		rt.ID = 3
		f.state.Route = &rt
		if f.syncErr != "" {
			a.SyncErrors = []string{f.syncErr}
		} else {
			f.state.TrunkRedis = map[string]string{"NAME": tr.Name, "TECH": "PJSIP"}
			f.state.RouteRedis = map[string]string{"NAME": rt.Name, "TRUNKS": "1", "TRUNK-1": "7"}
		}
	}
	st := f.state
	a.State = &st
	return append([]byte("some log line\n"), WriteAnswer(a)...), nil
}

func (f *fakeShell) calls() ([][]string, []Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.argv, f.reqs
}

func testTrunk() events.Trunk {
	return events.Trunk{
		Site: "bsas-1", Scenario: "lan", PBXAddress: "10.0.0.2", PBXPort: 5060, OMLAddress: "10.0.0.3",
		OMLTransport: "trunk-transport", OMLPort: 5161, PBXTrunkName: "omnileads", OMLTrunkName: "issabel",
		PBXUser: "omnileads", OMLUser: "issabel", Secret: "s3cret-Value-1", PBXCodecs: []string{"ulaw"},
		OMLCodecs: []string{"ulaw"}, QualifyFrequency: 60, DIDs: []events.DID{{Number: "098098"}}, ProbeNumber: "0999999",
	}
}

// TestCommandPerKind: each deployment kind reaches OMniLeads' management shell
// its own way, with the script on stdin (never in the argv).
func TestCommandPerKind(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		argv []string
		ver  string
	}{
		{Config{Deployment: KindHost1x}, []string{"su", "-", "omnileads", "-s", "/bin/bash", "-c", "/opt/omnileads/virtualenv/bin/python3 /opt/omnileads/ominicontacto/manage.py shell"}, "1.33.2"},
		{Config{Deployment: KindDocker1x}, []string{"docker", "exec", "-i", "oml-omniapp-prodenv", "python3", "/opt/omnileads/ominicontacto/manage.py", "shell"}, "release-1.30.0"},
		{Config{Deployment: KindDocker1x, Container: "oml-django"}, []string{"docker", "exec", "-i", "oml-django", "python3", "/opt/omnileads/ominicontacto/manage.py", "shell"}, "1.30.0"},
		{Config{Deployment: KindPodman2x}, []string{"podman", "exec", "-i", "oml-uwsgi-server", "python3", "/opt/omnileads/ominicontacto/manage.py", "shell"}, "release-2.6.3"},
		{Config{Deployment: KindCompose2x}, []string{"docker", "exec", "-i", "oml-uwsgi", "python3", "/opt/omnileads/ominicontacto/manage.py", "shell"}, "2.4.0"},
		{Config{Deployment: KindCompose2x, Manage: []string{"/bin/sh", "-c", "exec manage shell"}}, []string{"/bin/sh", "-c", "exec manage shell"}, "2.6.3"},
	} {
		t.Run(string(tt.cfg.Deployment)+tt.cfg.Container, func(t *testing.T) {
			f := &fakeShell{version: tt.ver}
			o, err := New(tt.cfg, f.run)
			require.NoError(t, err)
			tr := testTrunk()
			_, err = o.Snapshot(context.Background(), tr)
			require.NoError(t, err)
			mustApply(t, o, context.Background(), tr, tr.Secret)
			argv, reqs := f.calls()
			require.Len(t, argv, 2)
			for _, a := range argv {
				assert.Equal(t, tt.argv, a)
				assert.NotContains(t, strings.Join(a, " "), tr.Secret)
			}
			assert.Equal(t, "inspect", reqs[0].Action)
			assert.Equal(t, "apply", reqs[1].Action)
			assert.Equal(t, "issabel", reqs[1].Trunk.Name)
			assert.Equal(t, 1, reqs[1].Trunk.Tecnologia, "pjsip")
			assert.Contains(t, reqs[1].Trunk.TextConfig, "type=wizard\n")
			assert.Contains(t, reqs[1].Trunk.TextConfig, "inbound_auth/password="+tr.Secret+"\n")
			assert.NotContains(t, reqs[1].Trunk.TextConfig, "[issabel]", "OMniLeads adds the section line itself")
			assert.Equal(t, "pbxfleet_issabel", reqs[1].Route.Name)
			assert.Equal(t, []PatternDef{{Pattern: "X."}}, reqs[1].Route.Patterns, "the default sends every number")
			assert.Equal(t, []string{"issabel"}, reqs[1].Route.Trunks)
		})
	}
}

// TestCustomFileMakesNoObjects: custom-file (and the empty default) is the
// files-only mode: no Objects, no command.
func TestCustomFileMakesNoObjects(t *testing.T) {
	for _, c := range []Config{{}, {Deployment: KindCustomFile}} {
		assert.False(t, c.Objects())
		require.NoError(t, c.Validate())
		_, err := New(c, nil)
		assert.ErrorIs(t, err, ErrConfig)
	}
	err := Config{Deployment: KindCustomFile, Container: "x"}.Validate()
	assert.ErrorIs(t, err, ErrConfig)
	assert.ErrorIs(t, Config{RouteProbe: true}.Validate(), ErrConfig, "no route probe without objects")
	err = Config{Deployment: "k8s"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "custom-file, host-1x, docker-1x, podman-2x, compose-2x")
}

// TestVersionRefusal: a kind refuses, with the reason, an OMniLeads of the
// other major release, a newer one, one that reports no release, and one
// without the model fields the script uses; nothing is applied then.
func TestVersionRefusal(t *testing.T) {
	for _, tt := range []struct {
		kind    Kind
		version string
		want    string
	}{
		{KindPodman2x, "release-1.33.2", "OMniLeads 1.33.2 is not a 2.x release, which deployment podman-2x drives; it needs host-1x or docker-1x"},
		{KindHost1x, "release-2.6.3", "OMniLeads 2.6.3 is not a 1.x release, which deployment host-1x drives; it needs podman-2x or compose-2x"},
		{KindCompose2x, "3.0.1", "OMniLeads 3.0.1 is newer than any release pbxfleet knows"},
		{KindDocker1x, "", "cannot tell which OMniLeads this is"},
		{KindCompose2x, "develop", `"develop" is not an OMniLeads release number`},
	} {
		f := &fakeShell{version: tt.version}
		o, err := New(Config{Deployment: tt.kind}, f.run)
		require.NoError(t, err)
		_, err = o.Snapshot(context.Background(), testTrunk())
		require.ErrorIs(t, err, ErrUnsupported)
		assert.Contains(t, err.Error(), tt.want)
		_, err = o.Apply(context.Background(), testTrunk(), "s3cret-Value-1")
		require.ErrorIs(t, err, ErrUnsupported)
		_, reqs := f.calls()
		for _, r := range reqs {
			assert.Equal(t, "inspect", r.Action, "nothing applied on %s %s", tt.kind, tt.version)
		}
	}
	// The version the config states wins over the one the settings report.
	f := &fakeShell{version: ""}
	o, err := New(Config{Deployment: KindPodman2x, Version: "2.6.3"}, f.run)
	require.NoError(t, err)
	_, err = o.Snapshot(context.Background(), testTrunk())
	require.NoError(t, err)

	// A release lacking a field pbxfleet uses is refused by name.
	o, err = New(Config{Deployment: KindHost1x}, func(ctx context.Context, argv []string, stdin []byte) ([]byte, error) {
		return []byte(ResultMarker + `{"version":"1.10.0","features":["TroncalSIP.text_config"],"state":{}}` + "\n"), nil
	})
	require.NoError(t, err)
	_, err = o.Snapshot(context.Background(), testTrunk())
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "OMniLeads 1.10.0 lacks TroncalSIP.text_config")

	// So is one that keeps its families in AstDB (no Redis module), without a state.
	o, err = New(Config{Deployment: KindDocker1x}, func(ctx context.Context, argv []string, stdin []byte) ([]byte, error) {
		return []byte(ResultMarker + `{"version":"1.4.0","features":["the Redis families (No module named 'ominicontacto_app.services.redis')"]}` + "\n"), nil
	})
	require.NoError(t, err)
	_, err = o.Apply(context.Background(), testTrunk(), "s3cret-Value-1")
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "OMniLeads 1.4.0 lacks the Redis families")
}

// TestApplyFailsWhenRedisDisagrees: a synchronizer that failed (OMniLeads'
// AMI down) leaves rows without hashes; Apply fails naming both, and never
// shows the secret.
func TestApplyFailsWhenRedisDisagrees(t *testing.T) {
	f := &fakeShell{version: "release-2.6.3", syncErr: "trunk synchronizer: s3cret-Value-1 could not reach AMI"}
	o, err := New(Config{Deployment: KindPodman2x}, f.run)
	require.NoError(t, err)
	_, err = o.Apply(context.Background(), testTrunk(), "s3cret-Value-1")
	require.ErrorIs(t, err, ErrOMniLeads)
	assert.Contains(t, err.Error(), "database and Redis disagree: SIP trunk issabel (id 7) has OML:TRUNK:7 missing")
	assert.NotContains(t, err.Error(), "s3cret-Value-1")
}

// TestChecksNameTheMissingDID: each DID gets its own check; one without an
// inbound route fails naming the DID.
func TestChecksNameTheMissingDID(t *testing.T) {
	tr := testTrunk()
	tr.DIDs = append(tr.DIDs, events.DID{Number: "098099"})
	st := State{
		Trunk:        &TrunkDef{ID: 7, Name: "issabel", Tecnologia: 1},
		TrunkRedis:   map[string]string{"NAME": "issabel", "TECH": "PJSIP"},
		Route:        &RouteDef{ID: 3, Name: "pbxfleet_issabel", Patterns: []PatternDef{{Pattern: "X."}}, Trunks: []string{"issabel"}},
		RouteRedis:   map[string]string{"NAME": "pbxfleet_issabel", "TRUNKS": "1", "TRUNK-1": "7"},
		Inbound:      map[string]*InboundDef{"098098": {ID: 1, Name: "in1"}, "098099": nil},
		InboundRedis: map[string]map[string]string{"098098": {"NAME": "in1", "DST": "5,1"}, "098099": {}},
	}
	cs := Checks(st, tr)
	require.Len(t, cs, 4)
	byName := map[string]events.Check{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	assert.True(t, byName[CheckTrunk].Passed, byName[CheckTrunk].Detail)
	assert.True(t, byName[CheckRoute].Passed, byName[CheckRoute].Detail)
	assert.Contains(t, byName[CheckRoute].Detail, "OML:OUTR:3 TRUNK-1=7 (issabel)")
	assert.True(t, byName[CheckInbound+" 098098"].Passed)
	miss := byName[CheckInbound+" 098099"]
	assert.False(t, miss.Passed)
	assert.Equal(t, "DID 098099 has no inbound route in OMniLeads (OML:INR:098099 missing)", miss.Detail)

	// The route pointing at another trunk id fails.
	st.RouteRedis["TRUNK-1"] = "8"
	cs = Checks(st, tr)
	assert.False(t, cs[1].Passed)
	assert.Contains(t, cs[1].Detail, "want TRUNK-1=7")
}

// TestShellWithoutAnswer: a command that is not OMniLeads' shell is an error
// that says so.
func TestShellWithoutAnswer(t *testing.T) {
	o, err := New(Config{Deployment: KindCompose2x}, func(context.Context, []string, []byte) ([]byte, error) {
		return []byte("Error: No such container: oml-uwsgi\n"), fmt.Errorf("docker: %w", errors.New("exit status 1"))
	})
	require.NoError(t, err)
	_, err = o.Snapshot(context.Background(), testTrunk())
	require.ErrorIs(t, err, ErrOMniLeads)
	assert.Contains(t, err.Error(), "management shell inspect: docker: exit status 1")
}

// TestRouteProbeNumber: the number dialled into the routes is the prefix of
// the first pattern that sends the probe number unchanged; off unless asked.
func TestRouteProbeNumber(t *testing.T) {
	tr := testTrunk()
	tr.ProbeNumber = "99999"
	off, err := New(Config{Deployment: KindPodman2x}, (&fakeShell{}).run)
	require.NoError(t, err)
	_, ok := off.RouteProbeNumber(tr)
	assert.False(t, ok, "off by default")

	o, err := New(Config{Deployment: KindPodman2x, RouteProbe: true}, (&fakeShell{}).run)
	require.NoError(t, err)
	n, ok := o.RouteProbeNumber(tr)
	assert.True(t, ok)
	assert.Equal(t, "99999", n, "the default route X. takes it as is")
	tr.OMLRoute = &events.OMLRoute{Name: "r", RingTime: 5, DialOptions: "T", Patterns: []events.DialPattern{
		{Pattern: "1XXX"}, {Prefix: "0", Prepend: "54", Pattern: "X."}, {Prefix: "8", Pattern: "[89]XXXX"}}}
	n, ok = o.RouteProbeNumber(tr)
	assert.True(t, ok)
	assert.Equal(t, "899999", n)
	tr.OMLRoute.Patterns = tr.OMLRoute.Patterns[:2]
	_, ok = o.RouteProbeNumber(tr)
	assert.False(t, ok, "a prepend changes the number the PBX gets")

	for _, c := range []struct {
		p, n string
		ok   bool
	}{{"X.", "99999", true}, {"X.", "9", false}, {"NXXXXXX", "2345678", true}, {"NXXXXXX", "1345678", false},
		{"1XXX", "1006", true}, {"1XXX", "10061", false}, {"[2-4]X", "35", true}, {"[2-4]X", "55", false}, {"9!", "9", true}, {"ZX", "05", false}} {
		assert.Equal(t, c.ok, MatchPattern(c.p, c.n), "%s %s", c.p, c.n)
	}
}

// mustApply applies t and returns the checks the apply reported.
func mustApply(t *testing.T, o *Objects, ctx context.Context, tr events.Trunk, secret string) []events.Check {
	t.Helper()
	checks, err := o.Apply(ctx, tr, secret)
	require.NoError(t, err)
	return checks
}
