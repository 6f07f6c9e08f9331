package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// OMLApp is a small stand-in for the OMniLeads application (release 2.6.3) for
// the demo, which installs nothing: it answers the management-shell protocol of
// internal/omlobjects (Run is an omlobjects.Runner) with the same observable
// contract the real application showed in omlobjects' tests against it:
//
//   - a SIP trunk is a row (id, name, pjsip, text config); saving it through
//     the "synchronizer" rewrites the whole oml_pjsip_trunks.conf ([name] then
//     the text config, for every pjsip trunk) in the host's config dir, where
//     the lab's stock oml_pjsip_wizard.conf includes it, then writes the hash
//     OML:TRUNK:<id> {TECH, NAME, CHANNELS, CALLERID};
//   - an outbound route is a row with its patterns and trunk sequence, and the
//     hash OML:OUTR:<id> {NAME, RINGTIME, OPTIONS, TRUNKS, PREFIX-n, PREPEND-n,
//     TRUNK-n = trunk id};
//   - an inbound route is a row and the hash OML:INR:<DID> {NAME, DST, ID, LANG};
//   - with its AMI down a synchronizer fails after the file and before the hash,
//     and the row stays: the database and Redis disagree.
//
// It is not OMniLeads: it has no web UI, no REST API and no dialplan of its
// own. Claims that rest on it are listed in docs/omnileads.md.
type OMLApp struct {
	confDir string
	// host, when attached, gets the hashes in its AstDB (OML/TRUNK/<id>/<field>,
	// OML/OUTR/<id>/<field>), where its dialplan reads them at call time.
	host *Host

	mu        sync.Mutex
	trunks    []omlobjects.TrunkDef
	routes    []omlobjects.RouteDef
	inbound   map[string]omlobjects.InboundDef
	campaigns map[string]int
	redis     map[string]map[string]string
	nextID    map[string]int
	amiDown   bool
	syncs     int
}

// OMLAppVersion is the release whose contract the stand-in keeps.
const OMLAppVersion = "release-2.6.3"

// NewOMLApp returns a stand-in whose synchronizer writes into confDir.
func NewOMLApp(confDir string) *OMLApp {
	return &OMLApp{confDir: confDir, inbound: map[string]omlobjects.InboundDef{}, campaigns: map[string]int{},
		redis: map[string]map[string]string{}, nextID: map[string]int{}}
}

func (o *OMLApp) id(kind string) int {
	o.nextID[kind]++
	return o.nextID[kind]
}

// AttachHost makes the lab host h read the hashes at call time (its AstDB
// mirrors them) and the route file the synchronizer writes.
func (o *OMLApp) AttachHost(h *Host) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.host = h
}

// mirror copies a hash into the attached host's AstDB (nil h: removes it).
func (o *OMLApp) mirror(key string, h map[string]string) {
	if o.host == nil {
		return
	}
	path := strings.ReplaceAll(key, ":", "/") // OML:OUTR:3 -> OML/OUTR/3
	fam, rest, _ := strings.Cut(path, "/")
	o.host.mu.Lock()
	for k := range o.host.db {
		if strings.HasPrefix(k, "/"+path+"/") {
			delete(o.host.db, k)
		}
	}
	o.host.mu.Unlock()
	for f, v := range h {
		o.host.dbPut(fam, rest+"/"+f, v)
	}
}

// writeRoutes is RutasSalientesConfigCreator: the whole oml_extensions_outr.conf,
// in the shape OMniLeads 2.6.3 writes it ([oml-outr] includes each route's
// context in order; each pattern an extension that calls sub-oml-dialout).
func (o *OMLApp) writeRoutes() error {
	var b strings.Builder
	b.WriteString("[oml-outr]\n")
	for _, r := range o.routes {
		fmt.Fprintf(&b, "include => oml-outr-%d\n", r.ID)
	}
	for _, r := range o.routes {
		fmt.Fprintf(&b, "\n[oml-outr-%d]\n", r.ID)
		for i, p := range r.Patterns {
			fmt.Fprintf(&b, "exten => _%s%s,1,Verbose(2, OUT-R %s)\n", p.Prefix, p.Pattern, r.Name)
			fmt.Fprintf(&b, "same => n,Set(OMLOUTRID=%d)\n", r.ID)
			fmt.Fprintf(&b, "same => n,Gosub(sub-oml-dialout,s,1(%d,%d))\n", r.ID, i+1)
			b.WriteString("same => n,Gosub(sub-oml-hangup,s,1(OUTR-FAIL))\n")
		}
	}
	return writeFileAtomic(filepath.Join(o.confDir, "oml_extensions_outr.conf"), []byte(b.String()))
}

// AddInboundRoute makes an inbound route for did to the HangUp destination, as
// an integrator would in OMniLeads' UI.
func (o *OMLApp) AddInboundRoute(did string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.id("inbound")
	o.inbound[did] = omlobjects.InboundDef{ID: id, Name: "in_" + did, DID: did, DstType: 5, DstObject: 1, DstName: "HangUp", Lang: "es"}
	o.redis["OML:INR:"+did] = map[string]string{"NAME": "in_" + did, "DST": "5,1", "ID": strconv.Itoa(id), "LANG": "es"}
}

// DeleteInboundRoute removes did's inbound route, as an integrator would.
func (o *OMLApp) DeleteInboundRoute(did string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.inbound, did)
	delete(o.redis, "OML:INR:"+did)
}

// AddCampaign makes an inbound campaign named name.
func (o *OMLApp) AddCampaign(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.campaigns[name] = o.id("campaign")
}

// SetAMIDown makes the synchronizers fail as with OMniLeads' AMI unreachable.
func (o *OMLApp) SetAMIDown(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.amiDown = down
}

// Hash returns a copy of a Redis hash (nil when missing).
func (o *OMLApp) Hash(key string) map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if h, ok := o.redis[key]; ok {
		out := make(map[string]string, len(h))
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	return nil
}

// Syncs counts the synchronizer runs (each writes configuration and reloads).
func (o *OMLApp) Syncs() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.syncs
}

// Summary describes the trunks and outbound routes the stand-in holds, as
// OMniLeads objects with their Redis hashes, one line each.
func (o *OMLApp) Summary() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, t := range o.trunks {
		out = append(out, fmt.Sprintf("SIP trunk %s id %d (pjsip); OML:TRUNK:%d NAME=%s TECH=%s", t.Name, t.ID, t.ID,
			o.redis[fmt.Sprintf("OML:TRUNK:%d", t.ID)]["NAME"], o.redis[fmt.Sprintf("OML:TRUNK:%d", t.ID)]["TECH"]))
	}
	for _, r := range o.routes {
		h := o.redis[fmt.Sprintf("OML:OUTR:%d", r.ID)]
		var pats []string
		for _, p := range r.Patterns {
			pats = append(pats, omlobjects.ShowPatternDef(p))
		}
		out = append(out, fmt.Sprintf("outbound route %s id %d, patterns %s, trunks %s; OML:OUTR:%d TRUNK-1=%s", r.Name, r.ID,
			strings.Join(pats, ","), strings.Join(r.Trunks, ","), r.ID, h["TRUNK-1"]))
	}
	return out
}

// Run answers one run of the management shell (an omlobjects.Runner).
func (o *OMLApp) Run(_ context.Context, _ []string, stdin []byte) ([]byte, error) {
	req, err := omlobjects.ReadRequest(stdin)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	a := omlobjects.Answer{Version: OMLAppVersion}
	switch req.Action {
	case "inspect":
	case "apply":
		a.Changed, a.SyncErrors, err = o.apply(req)
	case "restore":
		a.Changed, a.SyncErrors, err = o.restore(req)
	default:
		err = fmt.Errorf("unknown action %s", req.Action)
	}
	if err != nil {
		a.Error = "RuntimeError: " + err.Error()
		return omlobjects.WriteAnswer(a), nil
	}
	st := o.state(req)
	a.State = &st
	return omlobjects.WriteAnswer(a), nil
}

func (o *OMLApp) state(req omlobjects.Request) omlobjects.State {
	st := omlobjects.State{Inbound: map[string]*omlobjects.InboundDef{}, InboundRedis: map[string]map[string]string{}}
	if i := o.trunkIndex(req.Trunk.Name); i >= 0 {
		t := o.trunks[i]
		st.Trunk = &t
		st.TrunkRedis = copyHash(o.redis[fmt.Sprintf("OML:TRUNK:%d", t.ID)])
	}
	if req.Route != nil {
		if i := o.routeIndex(req.Route.Name); i >= 0 {
			r := o.routes[i]
			r.Patterns = slices.Clone(r.Patterns)
			r.Trunks = slices.Clone(r.Trunks)
			st.Route = &r
			st.RouteRedis = copyHash(o.redis[fmt.Sprintf("OML:OUTR:%d", r.ID)])
		}
	}
	for _, did := range req.DIDs {
		if in, ok := o.inbound[did]; ok {
			st.Inbound[did] = &in
		} else {
			st.Inbound[did] = nil
		}
		st.InboundRedis[did] = copyHash(o.redis["OML:INR:"+did])
	}
	return st
}

func copyHash(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func (o *OMLApp) trunkIndex(name string) int {
	return slices.IndexFunc(o.trunks, func(t omlobjects.TrunkDef) bool { return t.Name == name })
}

func (o *OMLApp) routeIndex(name string) int {
	return slices.IndexFunc(o.routes, func(r omlobjects.RouteDef) bool { return r.Name == name })
}

// putTrunk creates or updates the trunk row; it reports whether it changed.
func (o *OMLApp) putTrunk(d omlobjects.TrunkDef) (omlobjects.TrunkDef, bool) {
	want := omlobjects.TrunkDef{Name: d.Name, Tecnologia: d.Tecnologia, TextConfig: d.TextConfig, CanalesMaximos: d.CanalesMaximos,
		CallerID: d.CallerID, RegisterString: d.RegisterString}
	if want.Tecnologia == 0 {
		want.Tecnologia = 1
	}
	if want.CanalesMaximos == 0 {
		want.CanalesMaximos = 1000
	}
	if i := o.trunkIndex(d.Name); i >= 0 {
		want.ID = o.trunks[i].ID
		same := o.trunks[i].Tecnologia == want.Tecnologia && o.trunks[i].TextConfig == want.TextConfig && o.trunks[i].CanalesMaximos == want.CanalesMaximos
		o.trunks[i] = want
		return want, !same
	}
	want.ID = o.id("trunk")
	o.trunks = append(o.trunks, want)
	return want, true
}

// syncTrunk is the trunk synchronizer: the whole trunks file, a reload, then
// the hash (not written when the AMI is down).
func (o *OMLApp) syncTrunk(t omlobjects.TrunkDef, errs *[]string) {
	o.syncs++
	var b strings.Builder
	for _, tr := range o.trunks {
		if tr.Tecnologia == 1 {
			fmt.Fprintf(&b, "\n[%s]\n%s\n", tr.Name, strings.ReplaceAll(tr.TextConfig, "\r", ""))
		}
	}
	if err := writeFileAtomic(filepath.Join(o.confDir, "oml_pjsip_trunks.conf"), []byte(b.String())); err != nil {
		*errs = append(*errs, "trunk synchronizer: "+err.Error())
		return
	}
	if o.amiDown {
		*errs = append(*errs, "trunk synchronizer: El Asterisk Manager no ha sido conectado")
		return
	}
	key := fmt.Sprintf("OML:TRUNK:%d", t.ID)
	if o.trunkIndex(t.Name) < 0 {
		delete(o.redis, key)
		o.mirror(key, nil)
		return
	}
	o.redis[key] = map[string]string{"TECH": "PJSIP", "NAME": t.Name, "CHANNELS": strconv.Itoa(t.CanalesMaximos), "CALLERID": ""}
	o.mirror(key, o.redis[key])
}

func (o *OMLApp) putRoute(d omlobjects.RouteDef) (omlobjects.RouteDef, bool, error) {
	for _, name := range d.Trunks {
		if o.trunkIndex(name) < 0 {
			return omlobjects.RouteDef{}, false, fmt.Errorf("TroncalSIP matching query does not exist: %s", name)
		}
	}
	want := omlobjects.RouteDef{Name: d.Name, RingTime: d.RingTime, DialOptions: d.DialOptions, Patterns: slices.Clone(d.Patterns), Trunks: slices.Clone(d.Trunks)}
	if i := o.routeIndex(d.Name); i >= 0 {
		want.ID = o.routes[i].ID
		cur := o.routes[i]
		same := cur.RingTime == want.RingTime && cur.DialOptions == want.DialOptions && slices.Equal(cur.Patterns, want.Patterns) && slices.Equal(cur.Trunks, want.Trunks)
		o.routes[i] = want
		return want, !same, nil
	}
	want.ID = o.id("route")
	o.routes = append(o.routes, want)
	return want, true, nil
}

func (o *OMLApp) syncRoute(r omlobjects.RouteDef, deleted bool, errs *[]string) {
	o.syncs++
	if err := o.writeRoutes(); err != nil {
		*errs = append(*errs, "outbound route synchronizer: "+err.Error())
		return
	}
	if o.amiDown {
		*errs = append(*errs, "outbound route synchronizer: El Asterisk Manager no ha sido conectado")
		return
	}
	key := fmt.Sprintf("OML:OUTR:%d", r.ID)
	if deleted {
		delete(o.redis, key)
		o.mirror(key, nil)
		return
	}
	h := map[string]string{"NAME": r.Name, "RINGTIME": strconv.Itoa(r.RingTime), "OPTIONS": r.DialOptions, "TRUNKS": strconv.Itoa(len(r.Trunks))}
	for i, p := range r.Patterns {
		n := strconv.Itoa(i + 1)
		h["PREFIX-"+n] = ""
		if p.Prefix != "" {
			h["PREFIX-"+n] = strconv.Itoa(len(p.Prefix))
		}
		h["PREPEND-"+n] = p.Prepend
	}
	for i, name := range r.Trunks {
		h["TRUNK-"+strconv.Itoa(i+1)] = strconv.Itoa(o.trunks[o.trunkIndex(name)].ID)
	}
	o.redis[key] = h
	o.mirror(key, h)
}

func (o *OMLApp) trunkRedisOK(t omlobjects.TrunkDef) bool {
	h := o.redis[fmt.Sprintf("OML:TRUNK:%d", t.ID)]
	return h["NAME"] == t.Name && h["TECH"] == "PJSIP"
}

func (o *OMLApp) routeRedisOK(r omlobjects.RouteDef) bool {
	h := o.redis[fmt.Sprintf("OML:OUTR:%d", r.ID)]
	if h["NAME"] != r.Name || h["TRUNKS"] != strconv.Itoa(len(r.Trunks)) {
		return false
	}
	for i, name := range r.Trunks {
		if h["TRUNK-"+strconv.Itoa(i+1)] != strconv.Itoa(o.trunks[o.trunkIndex(name)].ID) {
			return false
		}
	}
	return true
}

func (o *OMLApp) apply(req omlobjects.Request) (changed, errs []string, err error) {
	t, ch := o.putTrunk(req.Trunk)
	if ch || !o.trunkRedisOK(t) {
		changed = append(changed, "trunk")
		o.syncTrunk(t, &errs)
	}
	if req.Route != nil && len(errs) == 0 {
		r, ch, err := o.putRoute(*req.Route)
		if err != nil {
			return changed, errs, err
		}
		if ch || !o.routeRedisOK(r) {
			changed = append(changed, "route")
			o.syncRoute(r, false, &errs)
		}
	}
	if req.InboundCampaign != "" && len(errs) == 0 {
		for _, did := range req.DIDs {
			if _, ok := o.inbound[did]; ok {
				continue
			}
			cid, ok := o.campaigns[req.InboundCampaign]
			if !ok {
				return changed, errs, fmt.Errorf("inbound campaign %q does not exist in OMniLeads", req.InboundCampaign)
			}
			id := o.id("inbound")
			name := "pbxfleet_" + did
			o.inbound[did] = omlobjects.InboundDef{ID: id, Name: name, DID: did, DstType: 1, DstObject: cid, DstName: req.InboundCampaign, Lang: "es"}
			changed = append(changed, "inbound "+did)
			o.syncs++
			o.redis["OML:INR:"+did] = map[string]string{"NAME": name, "DST": "1," + strconv.Itoa(cid), "ID": strconv.Itoa(id), "LANG": "es"}
		}
	}
	return changed, errs, nil
}

func (o *OMLApp) restore(req omlobjects.Request) (changed, errs []string, err error) {
	var snap omlobjects.State
	if err := json.Unmarshal(req.Snapshot, &snap); err != nil {
		return nil, nil, err
	}
	if snap.Trunk != nil {
		t, ch := o.putTrunk(*snap.Trunk)
		if ch || !o.trunkRedisOK(t) {
			changed = append(changed, "trunk")
			o.syncTrunk(t, &errs)
		}
	}
	if req.Route != nil {
		if snap.Route != nil {
			r, ch, err := o.putRoute(*snap.Route)
			if err != nil {
				return changed, errs, err
			}
			if ch || !o.routeRedisOK(r) {
				changed = append(changed, "route")
				o.syncRoute(r, false, &errs)
			}
		} else if i := o.routeIndex(req.Route.Name); i >= 0 {
			r := o.routes[i]
			o.routes = slices.Delete(o.routes, i, i+1)
			changed = append(changed, "route deleted")
			o.syncRoute(r, true, &errs)
		}
	}
	dids := make([]string, 0, len(snap.Inbound))
	for did := range snap.Inbound {
		dids = append(dids, did)
	}
	sort.Strings(dids)
	for _, did := range dids {
		if snap.Inbound[did] == nil {
			if in, ok := o.inbound[did]; ok && strings.HasPrefix(in.Name, "pbxfleet_") {
				delete(o.inbound, did)
				delete(o.redis, "OML:INR:"+did)
				changed = append(changed, "inbound "+did+" deleted")
			}
		}
	}
	if snap.Trunk == nil {
		if i := o.trunkIndex(req.Trunk.Name); i >= 0 {
			t := o.trunks[i]
			for _, r := range o.routes {
				if slices.Contains(r.Trunks, t.Name) {
					return changed, append(errs, "trunk "+t.Name+": still used by an outbound route pbxfleet did not create"), nil
				}
			}
			o.trunks = slices.Delete(o.trunks, i, i+1)
			changed = append(changed, "trunk deleted")
			o.syncTrunk(t, &errs)
		}
	}
	return changed, errs, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
