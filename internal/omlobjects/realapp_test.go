package omlobjects

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

// The real OMniLeads application (release 2.6.3, its models, synchronizers,
// PostgreSQL and Redis) is found only through PBXFLEET_OMNILEADS, the directory
// holding its oml.sh (.ci/run sets it). One instance serves the whole package:
// its own database, and its own Redis on a loopback address of its own
// (OMniLeads always uses port 6379, so the address keeps other users of
// 127.0.0.1:6379 out of these keys). TestMain stops what it started.

type realApp struct {
	omlSh string
	dir   string
	db    string
	redis string // host of our redis-server (port 6379)
	rcmd  *exec.Cmd
}

var (
	appOnce sync.Once
	app     *realApp
	appErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if app != nil {
		app.stop()
	}
	os.Exit(code)
}

func needRealApp(t *testing.T) *realApp {
	t.Helper()
	root := os.Getenv("PBXFLEET_OMNILEADS")
	if root == "" {
		t.Skip("PBXFLEET_OMNILEADS is not set (the directory of the real OMniLeads' oml.sh)")
	}
	appOnce.Do(func() { app, appErr = startRealApp(root) })
	if appErr != nil {
		t.Fatalf("start the real OMniLeads: %v", appErr)
	}
	return app
}

func startRealApp(root string) (*realApp, error) {
	a := &realApp{omlSh: filepath.Join(root, "oml.sh"), db: fmt.Sprintf("pbxfleet_t%d", os.Getpid())}
	dir, err := os.MkdirTemp("", "pbxfleet-oml-")
	if err != nil {
		return nil, err
	}
	a.dir = dir
	// Our own Redis, on a loopback address nothing else uses.
	for i := 0; i < 20 && a.rcmd == nil; i++ {
		host := fmt.Sprintf("127.%d.%d.%d", 90+i, (os.Getpid()>>8)&0xff, 2+os.Getpid()%250)
		l, err := net.Listen("tcp", host+":6379")
		if err != nil {
			continue
		}
		l.Close()
		cmd := exec.Command("redis-server", "--bind", host, "--port", "6379", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			return a, fmt.Errorf("redis-server: %w", err)
		}
		a.rcmd, a.redis = cmd, host
	}
	if a.rcmd == nil {
		return a, fmt.Errorf("no free loopback address for redis")
	}
	for i := 0; i < 50; i++ {
		if c, err := net.Dial("tcp", a.redis+":6379"); err == nil {
			c.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.omlSh, "up", dir)
	cmd.Env = append(os.Environ(), "OML_DB="+a.db, fmt.Sprintf("OML_HTTP_PORT=%d", 18000+os.Getpid()%1000))
	if out, err := cmd.CombinedOutput(); err != nil {
		return a, fmt.Errorf("oml.sh up: %w: %s", err, out)
	}
	return a, nil
}

func (a *realApp) stop() {
	if a.dir != "" {
		cmd := exec.Command(a.omlSh, "down", a.dir)
		_ = cmd.Run()
		if a.db != "" {
			_ = exec.Command("su", "postgres", "-c", "dropdb --if-exists "+a.db).Run()
		}
	}
	if a.rcmd != nil {
		_ = a.rcmd.Process.Kill()
		_ = a.rcmd.Wait()
	}
	if a.dir != "" {
		os.RemoveAll(a.dir)
	}
}

// manage returns the argv of OMniLeads' management shell, with Redis at our
// address and its AMI at amiHost.
func (a *realApp) manage(amiHost string) []string {
	return []string{"bash", "-c", fmt.Sprintf(". %s/env.sh; export REDIS_HOSTNAME=%s ASTERISK_HOSTNAME=%s; cd %s/src; exec /usr/bin/python3 manage.py shell",
		a.dir, a.redis, amiHost, a.dir)}
}

func (a *realApp) objects(t *testing.T, amiHost string) *Objects {
	t.Helper()
	o, err := New(Config{Deployment: KindPodman2x, Manage: a.manage(amiHost), Timeout: 60 * time.Second}, nil)
	require.NoError(t, err)
	return o
}

// redisCLI runs redis-cli against our Redis.
func (a *realApp) redisCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", append([]string{"-h", a.redis, "-p", "6379", "--raw"}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

func (a *realApp) hget(t *testing.T, key, field string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", "-h", a.redis, "-p", "6379", "--raw", "hget", key, field).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

// sql runs a query on the instance's database (psql, not OMniLeads' code).
func (a *realApp) sql(t *testing.T, q string) string {
	t.Helper()
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-U", "omnileads", "-d", a.db, "-tAc", q)
	cmd.Env = append(os.Environ(), "PGPASSWORD=omnileads")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

// shell runs Python in OMniLeads' management shell (test setup only).
func (a *realApp) shell(t *testing.T, code string) string {
	t.Helper()
	argv := a.manage("127.0.0.1")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(code)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

// addInboundRoute makes an inbound route for did to OMniLeads' HangUp
// destination, as its web form does (model + synchronizer).
func (a *realApp) addInboundRoute(t *testing.T, did string) {
	t.Helper()
	a.shell(t, fmt.Sprintf(`
from configuracion_telefonia_app.models import RutaEntrante, DestinoEntrante, AudiosAsteriskConf
from configuracion_telefonia_app.regeneracion_configuracion_telefonia import SincronizadorDeConfiguracionRutaEntranteAsterisk
r = RutaEntrante(nombre="in_%[1]s", telefono="%[1]s", idioma=AudiosAsteriskConf.objects.first(), destino=DestinoEntrante.objects.get(tipo=DestinoEntrante.HANGUP))
r.save()
SincronizadorDeConfiguracionRutaEntranteAsterisk().regenerar_asterisk(r)
`, did))
}

func realTrunk(name string, dids ...string) events.Trunk {
	tr := testTrunk()
	tr.Site, tr.OMLTrunkName, tr.DIDs = "site-"+name, name, nil
	for _, d := range dids {
		tr.DIDs = append(tr.DIDs, events.DID{Number: d})
	}
	return tr
}

func checksByName(cs []events.Check) map[string]events.Check {
	m := map[string]events.Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

// TestRealOMniLeadsObjects: against the real application, Apply makes the trunk
// and the outbound route OMniLeads objects (rows in its database), its
// synchronizers write OML:TRUNK and OML:OUTR (the route's TRUNK-1 is the
// trunk's id) and the trunks file onto its configuration stream; Verify passes
// for a DID with an inbound route; a re-apply changes nothing.
func TestRealOMniLeadsObjects(t *testing.T) {
	a := needRealApp(t)
	ctx := context.Background()
	a.addInboundRoute(t, "4101")
	o := a.objects(t, "127.0.0.1")
	tr := realTrunk("pbxf_objects", "4101")
	tr.OMLRoute = &events.OMLRoute{Name: "to_pbx_objects", RingTime: 30, DialOptions: "Tt",
		Patterns: []events.DialPattern{{Pattern: "1XXX"}, {Prefix: "9", Pattern: "X."}}}

	_, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	applied := mustApply(t, o, ctx, tr, tr.Secret)

	id := a.sql(t, "select id from configuracion_telefonia_app_troncalsip where nombre='pbxf_objects' and tecnologia=1")
	require.NotEmpty(t, id, "the trunk is a TroncalSIP row")
	text := a.sql(t, "select text_config from configuracion_telefonia_app_troncalsip where id="+id)
	assert.Contains(t, text, "type=wizard")
	assert.Contains(t, text, "remote_hosts=10.0.0.2:5060")
	rid := a.sql(t, "select id from configuracion_telefonia_app_rutasaliente where nombre='to_pbx_objects' and ring_time=30")
	require.NotEmpty(t, rid)
	assert.Equal(t, id, a.sql(t, "select troncal_id from configuracion_telefonia_app_ordentroncal where ruta_saliente_id="+rid))
	assert.Equal(t, "1XXX||\nX.|9|", a.sql(t, "select match_pattern, coalesce(prefix,''), coalesce(prepend,'') from configuracion_telefonia_app_patrondediscado where ruta_saliente_id="+rid+" order by orden"))

	assert.Equal(t, "pbxf_objects", a.hget(t, "OML:TRUNK:"+id, "NAME"))
	assert.Equal(t, "PJSIP", a.hget(t, "OML:TRUNK:"+id, "TECH"))
	assert.Equal(t, id, a.hget(t, "OML:OUTR:"+rid, "TRUNK-1"), "OML:OUTR points at the trunk")
	assert.Equal(t, "1", a.hget(t, "OML:OUTR:"+rid, "PREFIX-2"), "OMniLeads keeps the prefix length")
	stream := a.redisCLI(t, "xrevrange", "asterisk_conf_updater", "+", "-", "COUNT", "5")
	assert.Contains(t, stream, `[pbxf_objects]`, "the trunks file went onto OMniLeads' configuration stream")

	verified := o.Verify(ctx, tr)
	cs := checksByName(verified)
	for _, n := range []string{CheckTrunk, CheckRoute, CheckInbound + " 4101"} {
		assert.True(t, cs[n].Passed, "%s: %s", n, cs[n].Detail)
		t.Logf("%s: %s", n, cs[n].Detail)
	}
	// The agent reports the apply's own checks (no second run of the shell):
	// they are what reading OMniLeads again finds.
	assert.Equal(t, verified, applied)

	// Re-apply: nothing changes, nothing is regenerated.
	xlen := a.redisCLI(t, "xlen", "asterisk_conf_updater")
	mustApply(t, o, ctx, tr, tr.Secret)
	assert.Equal(t, xlen, a.redisCLI(t, "xlen", "asterisk_conf_updater"), "an unchanged apply writes no configuration")
	assert.Equal(t, id, a.sql(t, "select id from configuracion_telefonia_app_troncalsip where nombre='pbxf_objects'"))
	assert.Equal(t, "1", a.sql(t, "select count(*) from configuracion_telefonia_app_rutasaliente where nombre='to_pbx_objects'"))
	assert.Equal(t, "2", a.sql(t, "select count(*) from configuracion_telefonia_app_patrondediscado where ruta_saliente_id="+rid))
}

// TestRealOMniLeadsRollback: Restore puts back the objects a snapshot held
// (the trunk's text, the route's patterns, in the database and in Redis), and
// removes objects that did not exist before.
func TestRealOMniLeadsRollback(t *testing.T) {
	a := needRealApp(t)
	ctx := context.Background()
	o := a.objects(t, "127.0.0.1")
	tr := realTrunk("pbxf_rollback")
	empty, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	mustApply(t, o, ctx, tr, tr.Secret)
	id := a.sql(t, "select id from configuracion_telefonia_app_troncalsip where nombre='pbxf_rollback'")
	require.NotEmpty(t, id)
	rev1Text := a.sql(t, "select text_config from configuracion_telefonia_app_troncalsip where id="+id)

	snap1, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	var s snapshot
	require.NoError(t, json.Unmarshal(snap1, &s))
	require.NotNil(t, s.State.Trunk, "the snapshot holds the previous definition")
	assert.Equal(t, rev1Text, strings.TrimSpace(s.State.Trunk.TextConfig))

	tr2 := tr
	tr2.PBXAddress = "10.0.0.99"
	tr2.OMLRoute = &events.OMLRoute{Name: "pbxfleet_pbxf_rollback", RingTime: 40, DialOptions: "T", Patterns: []events.DialPattern{{Prepend: "0", Pattern: "NXXXXXX"}}}
	mustApply(t, o, ctx, tr2, "an0ther-Secret-2")
	assert.Contains(t, a.sql(t, "select text_config from configuracion_telefonia_app_troncalsip where id="+id), "10.0.0.99")

	require.NoError(t, o.Restore(ctx, snap1))
	assert.Equal(t, rev1Text, a.sql(t, "select text_config from configuracion_telefonia_app_troncalsip where id="+id), "the trunk of revision 1 is back")
	rid := a.sql(t, "select id from configuracion_telefonia_app_rutasaliente where nombre='pbxfleet_pbxf_rollback'")
	assert.Equal(t, "25|Tt", a.sql(t, "select ring_time||'|'||dial_options from configuracion_telefonia_app_rutasaliente where id="+rid))
	assert.Equal(t, "X.", a.sql(t, "select match_pattern from configuracion_telefonia_app_patrondediscado where ruta_saliente_id="+rid))
	assert.Equal(t, "25", a.hget(t, "OML:OUTR:"+rid, "RINGTIME"), "Redis follows")
	assert.Equal(t, "", a.hget(t, "OML:OUTR:"+rid, "PREPEND-1"))
	cs := checksByName(o.Verify(ctx, tr))
	assert.True(t, cs[CheckRoute].Passed, cs[CheckRoute].Detail)

	// Back to before the first apply: neither object existed.
	require.NoError(t, o.Restore(ctx, empty))
	assert.Equal(t, "0", a.sql(t, "select count(*) from configuracion_telefonia_app_troncalsip where nombre='pbxf_rollback'"))
	assert.Equal(t, "0", a.sql(t, "select count(*) from configuracion_telefonia_app_rutasaliente where nombre='pbxfleet_pbxf_rollback'"))
	assert.Equal(t, "0", a.redisCLI(t, "exists", "OML:TRUNK:"+id))
	assert.Equal(t, "0", a.redisCLI(t, "exists", "OML:OUTR:"+rid))
}

// TestRealOMniLeadsMissingInboundRoute: a DID without an inbound route in
// OMniLeads fails its check, naming the DID; the DID that has one passes.
func TestRealOMniLeadsMissingInboundRoute(t *testing.T) {
	a := needRealApp(t)
	ctx := context.Background()
	a.addInboundRoute(t, "4201")
	o := a.objects(t, "127.0.0.1")
	tr := realTrunk("pbxf_inbound", "4201", "4202")
	_, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	mustApply(t, o, ctx, tr, tr.Secret)
	cs := checksByName(o.Verify(ctx, tr))
	assert.True(t, cs[CheckInbound+" 4201"].Passed, cs[CheckInbound+" 4201"].Detail)
	miss := cs[CheckInbound+" 4202"]
	assert.False(t, miss.Passed)
	assert.Equal(t, "DID 4202 has no inbound route in OMniLeads (OML:INR:4202 missing)", miss.Detail)
	t.Logf("%s: %s", miss.Name, miss.Detail)

	// Naming a campaign that OMniLeads does not have fails the apply by name.
	tr.OMLRoute = &events.OMLRoute{Name: "pbxfleet_pbxf_inbound", RingTime: 25, DialOptions: "Tt", Patterns: []events.DialPattern{{Pattern: "X."}}, InboundCampaign: "no_such_campaign"}
	_, err = o.Apply(ctx, tr, tr.Secret)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "inbound campaign 'no_such_campaign' does not exist in OMniLeads")
}

// TestRealOMniLeadsAMIDown: with OMniLeads' AMI unreachable its synchronizer
// fails after the database row is saved and before the Redis hash is written;
// Apply fails saying the database and Redis disagree instead of reporting
// success.
func TestRealOMniLeadsAMIDown(t *testing.T) {
	a := needRealApp(t)
	ctx := context.Background()
	// An address of ours where nothing listens on 5038.
	l, err := net.Listen("tcp", a.redis+":5038")
	require.NoError(t, err)
	l.Close()
	o := a.objects(t, a.redis)
	tr := realTrunk("pbxf_amidown")
	_, err = o.Snapshot(ctx, tr)
	require.NoError(t, err)
	start := time.Now()
	_, err = o.Apply(ctx, tr, tr.Secret)
	require.ErrorIs(t, err, ErrOMniLeads)
	t.Logf("apply with AMI down (%s): %v", time.Since(start).Round(time.Millisecond), err)
	assert.Contains(t, err.Error(), "OMniLeads trunk synchronizer")
	assert.Contains(t, err.Error(), "database and Redis disagree: SIP trunk pbxf_amidown")
	assert.NotContains(t, err.Error(), tr.Secret)
	id := a.sql(t, "select id from configuracion_telefonia_app_troncalsip where nombre='pbxf_amidown'")
	require.NotEmpty(t, id, "OMniLeads kept the row")
	assert.Equal(t, "0", a.redisCLI(t, "exists", "OML:TRUNK:"+id), "and wrote no hash")
	cs := checksByName(o.Verify(ctx, tr))
	assert.False(t, cs[CheckTrunk].Passed)
	assert.Contains(t, cs[CheckTrunk].Detail, "is in the database but OML:TRUNK:"+id+" is missing")
}
