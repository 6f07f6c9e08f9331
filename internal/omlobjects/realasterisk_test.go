package omlobjects

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
)

// A real Asterisk 20.20.1 pair (an Issabel-shaped pbx and an OMniLeads-shaped
// oml) from the lab.sh in PBXFLEET_ASTERISK_LAB. The test plays the part of
// OMniLeads 2.x's retrieve-conf container: it reads the configuration stream
// the real application wrote (asterisk_conf_updater), writes each file into the
// oml instance's config dir and reloads.

type astLab struct {
	sh, dir, pbxIP, omlIP string
}

func needAsteriskLab(t *testing.T) *astLab {
	t.Helper()
	root := os.Getenv("PBXFLEET_ASTERISK_LAB")
	if root == "" {
		t.Skip("PBXFLEET_ASTERISK_LAB is not set (the directory of the real Asterisk's lab.sh)")
	}
	n := os.Getpid() % 250
	l := &astLab{sh: filepath.Join(root, "lab.sh"), dir: labDir(t), pbxIP: fmt.Sprintf("127.67.%d.2", n), omlIP: fmt.Sprintf("127.67.%d.3", n)}
	out, err := exec.Command(l.sh, "up", l.dir, l.pbxIP, l.omlIP).CombinedOutput()
	t.Cleanup(func() {
		if os.Getenv("PBXFLEET_KEEP_LAB") == "" {
			_ = exec.Command(l.sh, "down", l.dir).Run()
		}
	})
	require.NoError(t, err, "lab.sh up: %s", out)
	return l
}

func (l *astLab) rx(t *testing.T, inst, cmd string) string {
	t.Helper()
	out, err := exec.Command(l.sh, "rx", l.dir, inst, cmd).CombinedOutput()
	require.NoError(t, err, "%s: %s: %s", inst, cmd, out)
	return string(out)
}

func (l *astLab) etc(inst string) string { return filepath.Join(l.dir, inst, "etc") }

func (l *astLab) write(t *testing.T, inst, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(l.etc(inst), name), []byte(content), 0o644))
}

func (l *astLab) appendLine(t *testing.T, inst, name, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(l.etc(inst), name), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString("\n" + line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// retrieveConf does what OMniLeads 2.x's retrieve-conf container does with the
// stream entries after id: each CONF_FILE entry's content becomes the named
// file. It returns the names written and the id of the last entry.
func (a *realApp) retrieveConf(t *testing.T, l *astLab, after string) ([]string, string) {
	t.Helper()
	out, err := exec.Command("redis-cli", "-h", a.redis, "-p", "6379", "--json", "xrange", "asterisk_conf_updater", "("+after, "+").CombinedOutput()
	require.NoError(t, err, string(out))
	var entries [][]any
	require.NoError(t, json.Unmarshal(out, &entries), string(out))
	var names []string
	last := after
	for _, e := range entries {
		last = e[0].(string)
		fields := e[1].([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] != "value" {
				continue
			}
			var v struct{ Archivo, Content, Type string }
			require.NoError(t, json.Unmarshal([]byte(fields[i+1].(string)), &v))
			if v.Type == "CONF_FILE" {
				l.write(t, "oml", v.Archivo, v.Content)
				names = append(names, v.Archivo)
			}
		}
	}
	return names, last
}

// lastStreamID is the id of the newest entry of OMniLeads' configuration stream.
func (a *realApp) lastStreamID(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("redis-cli", "-h", a.redis, "-p", "6379", "--json", "xrevrange", "asterisk_conf_updater", "+", "-", "COUNT", "1").CombinedOutput()
	require.NoError(t, err, string(out))
	var entries [][]any
	require.NoError(t, json.Unmarshal(out, &entries), string(out))
	if len(entries) == 0 {
		return "0-0"
	}
	return entries[0][0].(string)
}

// probe originates a call into ctx of the oml instance and returns what the
// dialplan recorded in AstDB family/key.
func (l *astLab) probe(t *testing.T, number, ctx, family, key string) string {
	t.Helper()
	l.rx(t, "oml", fmt.Sprintf("database del %s %s", family, key))
	l.rx(t, "oml", fmt.Sprintf("channel originate Local/%s@%s application Wait 1", number, ctx))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out := l.rx(t, "oml", fmt.Sprintf("database get %s %s", family, key))
		if v, ok := strings.CutPrefix(strings.TrimSpace(out), "Value: "); ok && v != "started" {
			return v
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "no result"
}

// TestRealOMniLeadsRouteOnRealAsterisk: the trunk and the outbound route pbxfleet
// made in the real OMniLeads reach a real Asterisk the way OMniLeads 2.x carries
// them (its stream, written into the config dir, a reload): the endpoint exists,
// the trunk probe ends with cause 1 at the PBX's guarded probe number, and so
// does the agent's route probe: a call dialled into OMniLeads' own generated
// [oml-outr] (-> [oml-outr-<id>], pattern and prefix as the route says). The
// route's Gosub target sub-oml-dialout belongs to OMniLeads' Asterisk
// configuration, which this source does not hold: the test gives a minimal one
// that dials as OMniLeads' dialplan resolves a route (OML:OUTR:<id> TRUNK-n ->
// OML:TRUNK:<id> TECH and NAME), from the Redis hashes copied to AstDB.
func TestRealOMniLeadsRouteOnRealAsterisk(t *testing.T) {
	a := needRealApp(t)
	l := needAsteriskLab(t)
	ctx := context.Background()

	tr := events.Trunk{
		Site: "ast", Scenario: "lan", PBXAddress: l.pbxIP, PBXPort: 5060, OMLAddress: l.omlIP,
		OMLTransport: "trunk-transport", OMLPort: 5161, PBXTrunkName: "omnileads", OMLTrunkName: "pbxf_ast",
		PBXUser: "issabel", OMLUser: "omnileads", Secret: "Real-Ast-Secret-77", PBXCodecs: []string{"alaw"},
		OMLCodecs: []string{"alaw", "ulaw"}, QualifyFrequency: 60, ProbeNumber: "99999",
		OMLRoute: &events.OMLRoute{Name: "pbxf_ast_route", RingTime: 10, DialOptions: "T",
			Patterns: []events.DialPattern{{Prefix: "8", Pattern: "XXXXX"}}},
	}
	at := intent.ToTrunk(tr)
	at.Revision = 1

	// The PBX side as pbx-node writes it.
	pbx, err := asterisk.RenderPBX(at, asterisk.DefaultPBXFiles())
	require.NoError(t, err)
	for _, f := range pbx.Files {
		l.write(t, "pbx", f.Name, string(f.Content))
	}
	for _, inc := range pbx.Includes {
		l.appendLine(t, "pbx", inc.Parent, inc.Line)
	}
	l.rx(t, "pbx", "sip reload")
	l.rx(t, "pbx", "dialplan reload")

	// The OMniLeads side: pbxfleet's dialplan file (probe guard and probe
	// context) only; the trunk is OMniLeads' object.
	oml, err := asterisk.RenderOML(at, asterisk.DefaultOMLFiles())
	require.NoError(t, err)
	for _, f := range oml.Files {
		if f.Name == asterisk.DefaultOMLFiles().Dialplan {
			l.write(t, "oml", f.Name, string(f.Content))
		}
	}
	l.appendLine(t, "oml", "oml_extensions_custom.conf", "#include "+asterisk.DefaultOMLFiles().Dialplan)
	// Where OMniLeads' Asterisk reads what its application generates: trunks in the
	// wizard chain, routes in the dialplan.
	l.appendLine(t, "oml", "oml_pjsip_wizard.conf", "#include oml_pjsip_trunks.conf")
	l.appendLine(t, "oml", "oml_extensions_custom.conf", "#include oml_extensions_outr.conf")
	l.appendLine(t, "oml", "oml_extensions_custom.conf", `
[sub-oml-dialout]
; minimal stand-in for OMniLeads' own: route ARG1, pattern ARG2, number OMLOUTNUM
exten => s,1,Set(T=${DB(OML/OUTR/${ARG1}/TRUNK-1)})
 same => n,Set(N=${DB(OML/OUTR/${ARG1}/PREPEND-${ARG2})}${OMLOUTNUM:${DB(OML/OUTR/${ARG1}/PREFIX-${ARG2})}})
 same => n,Dial(${DB(OML/TRUNK/${T}/TECH)}/${N}@${DB(OML/TRUNK/${T}/NAME)},${DB(OML/OUTR/${ARG1}/RINGTIME)},g)
 same => n,Return()
[sub-oml-hangup]
exten => s,1,Hangup()
`+asterisk.RouteProbeDialplan())
	for _, name := range []string{"oml_pjsip_trunks.conf", "oml_extensions_outr.conf"} {
		l.write(t, "oml", name, "")
	}

	// Only this test's route in [oml-outr]: the others' routes (same database)
	// are removed the way OMniLeads removes one.
	a.shell(t, `
from configuracion_telefonia_app.models import RutaSaliente
from configuracion_telefonia_app.regeneracion_configuracion_telefonia import SincronizadorDeConfiguracionDeRutaSalienteEnAsterisk as S
for r in RutaSaliente.objects.exclude(nombre="pbxf_ast_route"):
    S().eliminar_y_regenerar_asterisk(r)
    r.delete()
`)
	o := a.objects(t, "127.0.0.1")
	before := a.lastStreamID(t)
	_, err = o.Snapshot(ctx, tr)
	require.NoError(t, err)
	mustApply(t, o, ctx, tr, tr.Secret)
	names, _ := a.retrieveConf(t, l, before)
	assert.Contains(t, names, "oml_pjsip_trunks.conf")
	assert.Contains(t, names, "oml_extensions_outr.conf")
	// What OMniLeads' Asterisk reads at call time, copied from Redis.
	for _, key := range []string{"OML:TRUNK:*", "OML:OUTR:*"} {
		out, err := exec.Command("redis-cli", "-h", a.redis, "-p", "6379", "--raw", "keys", key).CombinedOutput()
		require.NoError(t, err)
		for _, k := range strings.Fields(string(out)) {
			hout, err := exec.Command("redis-cli", "-h", a.redis, "-p", "6379", "--json", "hgetall", k).CombinedOutput()
			require.NoError(t, err)
			var h map[string]string
			require.NoError(t, json.Unmarshal(hout, &h), string(hout))
			fam := strings.ReplaceAll(k, ":", "/")
			for f, v := range h {
				if v == "" {
					continue // DB() of a missing key is empty too
				}
				l.rx(t, "oml", fmt.Sprintf("database put %s %s %s", fam, f, v))
			}
		}
	}
	// The applications OMniLeads' generated route context uses, which the lab's
	// minimal module list does not load.
	for _, m := range []string{"app_verbose.so", "app_stack.so", "app_exec.so", "func_cut.so"} {
		l.rx(t, "oml", "module load "+m)
	}
	l.rx(t, "oml", "module reload res_pjsip.so")
	l.rx(t, "oml", "dialplan reload")

	ep := l.rx(t, "oml", "pjsip show endpoint pbxf_ast")
	assert.Contains(t, ep, "Endpoint:  pbxf_ast", "OMniLeads' trunk is an endpoint on real Asterisk")
	t.Logf("route context:\n%s", l.rx(t, "oml", "dialplan show oml-outr"))

	got := l.probe(t, "99999", asterisk.ProbeContext, asterisk.ProbeDBFamily, asterisk.ProbeDBKey)
	t.Logf("trunk probe: %s", got)
	assert.True(t, strings.HasSuffix(got, ":1"), "the trunk probe ends with cause 1: %s", got)

	// The agent's route probe: the number the route probe picks, into the
	// context agents-node renders (asterisk.RouteProbeDialplan), through
	// OMniLeads' [oml-outr].
	o.cfg.RouteProbe = true
	number, ok := o.RouteProbeNumber(tr)
	require.True(t, ok)
	require.Equal(t, "899999", number)
	got = l.probe(t, number, asterisk.RouteProbeContext, asterisk.ProbeDBFamily, asterisk.RouteProbeDBKey)
	t.Logf("outbound-route probe (8 + 99999, prefix 8 stripped): %s", got)
	assert.True(t, strings.HasSuffix(got, ":1"), "the call through the outbound route ends with cause 1 at the PBX's probe number: %s", got)
	pbxLog, _ := os.ReadFile(filepath.Join(l.dir, "pbx", "log", "full"))
	// Both calls reached the PBX as its peer omnileads (authenticated) and its
	// guarded probe number, the route's prefix stripped.
	assert.Equal(t, 2, strings.Count(string(pbxLog), `Executing [99999@from-internal:1] Hangup("SIP/omnileads-`), "PBX log:\n%s", pbxLog)
}

func labDir(t *testing.T) string {
	if d := os.Getenv("PBXFLEET_KEEP_LAB"); d != "" {
		return d
	}
	return t.TempDir()
}
