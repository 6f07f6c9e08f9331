package asterisk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RenderPBX renders the Issabel side of t: the chan_sip peer file (names.Peer) and the
// dialplan file (names.Dialplan), in that order, plus the #include lines that make
// sip_custom.conf and extensions_custom.conf read them. It runs CheckTrunk and checks
// the file names first; on any problem it returns an empty Rendered and every problem,
// wrapped with the site. The output depends on t and names only.
func RenderPBX(t Trunk, names PBXFiles) (Rendered, error) {
	err := errors.Join(CheckTrunk(t), checkPBXFiles(names))
	if err != nil {
		return Rendered{}, fmt.Errorf("render pbx side of site %q: %w", t.Site, err)
	}
	return Rendered{
		Files: []File{
			{Name: names.Peer, Content: []byte(renderPeer(t))},
			{Name: names.Dialplan, Content: []byte(renderPBXDialplan(t))},
		},
		Includes: []Include{
			{Parent: names.SIPParent, Line: "#include " + names.Peer},
			{Parent: names.ExtensionsParent, Line: "#include " + names.Dialplan},
		},
	}, nil
}

func checkPBXFiles(names PBXFiles) error {
	var errs []error
	for _, f := range []struct{ field, name string }{
		{"files.peer", names.Peer},
		{"files.dialplan", names.Dialplan},
		{"files.sip_parent", names.SIPParent},
		{"files.extensions_parent", names.ExtensionsParent},
	} {
		if err := checkFileName(f.name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
	}
	if names.Peer == names.Dialplan {
		errs = append(errs, fmt.Errorf("files.dialplan: %w: same file as files.peer", ErrInvalidTrunk))
	}
	return errors.Join(errs...)
}

// renderPeer writes the chan_sip peer with the seed's keys in the seed's order
// (docs/asterisk.md#scenarios-and-ports, #how-the-two-sides-relate), plus qualifyfreq: chan_sip's own qualify period for this
// peer, the fleet's qualify frequency (the manual's 60 s is chan_sip's default
// too), so the PBX notices the far side going away as fast as OMniLeads does and
// pbxfleet never needs to force a qualify (a forced one that gets no answer
// stops chan_sip's cycle for the peer). The section name is the "Trunk Name" OML
// authenticates as; one secret serves both directions.
func renderPeer(t Trunk) string {
	var b strings.Builder
	writeHeader(&b, t, rolePBX)
	fmt.Fprintf(&b, "[%s]\n", t.PBXTrunkName)
	for _, kv := range [][2]string{
		{"type", "friend"},
		{"host", t.PeerHost()},
		{"port", strconv.Itoa(t.OMLPort)},
		{"disallow", "all"},
		{"allow", strings.Join(t.PBXCodecs, ",")},
		{"qualify", "yes"},
		{"qualifyfreq", strconv.Itoa(t.QualifyFrequency)},
		{"secret", t.Secret},
		{"fromuser", t.PBXUser},
		{"defaultuser", t.PBXUser},
		{"context", "from-internal"},
		// The revision, shown by `sip show peer(s)`: `sip reload` returns
		// before chan_sip has read the file, and a changed secret is not
		// visible, so this is how the agent tells the new peer landed.
		{"description", PeerDescription(t.Revision)},
	} {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return b.String()
}

// PeerDescription is the chan_sip description= of the peer of revision rev.
func PeerDescription(rev uint64) string { return "pbxfleet r" + strconv.FormatUint(rev, 10) }
