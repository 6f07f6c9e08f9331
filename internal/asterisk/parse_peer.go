package asterisk

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Texts `sip show peer` shows for whether a secret is configured.
const (
	SecretSet    = "<Set>"
	SecretNotSet = "<Not set>"
)

// PeerDetail is what `sip show peer <name>` says about one chan_sip peer. The typed
// fields are the ones pbxfleet checks; Fields holds every "Key : Value" line.
type PeerDetail struct {
	// Name is the peer (section) name, from "* Name".
	Name        string
	Description string
	// Secret is SecretSet or SecretNotSet; chan_sip never prints the secret.
	Secret string
	// MD5Secret is SecretSet or SecretNotSet.
	MD5Secret string
	Context   string
	FromUser  string
	// DefUsername is the peer's defaultuser ("Def. Username").
	DefUsername string
	ToHost      string
	// Addr is "Addr->IP": the address:port chan_sip sends to, "(null)" when none.
	Addr    string
	Dynamic bool
	// Status is the raw status text, e.g. "OK (1 ms)".
	Status string
	// StatusKind is Status without the latency.
	StatusKind PeerStatus
	// LatencyMS is the qualify round trip when HasLatency.
	LatencyMS  int
	HasLatency bool
	// QualifyFreqMS is "Qualify Freq" in milliseconds.
	QualifyFreqMS int
	// Codecs is the raw codec list, e.g. "(alaw|ulaw)"; see CodecList.
	Codecs string
	// DTMFMode is "DTMFmode", e.g. rfc2833.
	DTMFMode string
	// ForceRport is "Force rport", e.g. "Auto (No)".
	ForceRport string
	// Fields maps each key as printed, trimmed and without the "* " of Name, to
	// its trimmed value. The first occurrence of a key wins.
	Fields map[string]string
}

// CodecList returns the codecs of Codecs in order, e.g. ["alaw", "ulaw"] for
// "(alaw|ulaw)" (or Asterisk 1.8's "0x8 (alaw)"), and nil for "(nothing)" or an
// empty value.
func (d PeerDetail) CodecList() []string {
	s := strings.TrimSpace(d.Codecs)
	if i := strings.LastIndexByte(s, '('); i >= 0 && strings.HasSuffix(s, ")") {
		s = s[i+1 : len(s)-1]
	}
	if s == "" || s == "nothing" {
		return nil
	}
	var codecs []string
	for _, c := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' }) {
		if c = strings.TrimSpace(c); c != "" {
			codecs = append(codecs, c)
		}
	}
	return codecs
}

var (
	// peerNotFoundRE is chan_sip's answer for an unknown peer (docs/asterisk.md#reloads-and-cli-replies).
	peerNotFoundRE = regexp.MustCompile(`^Peer (.*) not found\.$`)
	// peerStatusRE reads the Status value.
	peerStatusRE = regexp.MustCompile(`^(?:OK \(([0-9]{1,9}) ms\)|LAGGED \(([0-9]{1,9}) ms\)|UNREACHABLE|UNKNOWN|Unmonitored)$`)
	// qualifyFreqRE reads "Qualify Freq : 10000 ms".
	qualifyFreqRE = regexp.MustCompile(`^([0-9]{1,9}) ms$`)
)

// ParsePeer reads the output of `sip show peer <name>`. It returns an error
// wrapping ErrNotFound for "Peer <name> not found.", ErrNotRunning or
// ErrNoSuchCommand for those answers, and ErrUnexpectedOutput when the "* Name"
// line is missing or Status or Qualify Freq cannot be read. Log lines are skipped.
func ParsePeer(out []byte) (PeerDetail, error) {
	const op = "parse sip show peer"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return PeerDetail{}, err
	}
	d := PeerDetail{Fields: map[string]string{}}
	for _, line := range lines {
		if m := peerNotFoundRE.FindStringSubmatch(line); m != nil {
			return PeerDetail{}, fmt.Errorf("%s: peer %q: %w", op, m[1], ErrNotFound)
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			// Blank lines, and the indented continuation lines of
			// "Variables :", carry nothing pbxfleet checks.
			continue
		}
		key = strings.TrimPrefix(strings.TrimSpace(key), "* ")
		if key == "" {
			continue
		}
		if _, dup := d.Fields[key]; !dup {
			d.Fields[key] = strings.TrimSpace(val)
		}
	}
	name, ok := d.Fields["Name"]
	if !ok || name == "" {
		return PeerDetail{}, unexpected(op, "no \"* Name\" line", firstLine(lines))
	}
	f := d.Fields
	d.Name = name
	d.Description = f["Description"]
	d.Secret = f["Secret"]
	d.MD5Secret = f["MD5Secret"]
	d.Context = f["Context"]
	d.FromUser = f["FromUser"]
	d.DefUsername = f["Def. Username"]
	d.ToHost = f["ToHost"]
	d.Addr = f["Addr->IP"]
	d.Dynamic = f["Dynamic"] == "Yes"
	d.Codecs = f["Codecs"]
	d.DTMFMode = f["DTMFmode"]
	d.ForceRport = f["Force rport"]
	d.Status = f["Status"]
	m := peerStatusRE.FindStringSubmatch(d.Status)
	if m == nil {
		return PeerDetail{}, unexpected(op, "status of peer "+name, d.Status)
	}
	d.StatusKind, d.LatencyMS, d.HasLatency = splitPeerStatus(d.Status, m[1], m[2])
	if q, ok := f["Qualify Freq"]; ok {
		m := qualifyFreqRE.FindStringSubmatch(q)
		if m == nil {
			return PeerDetail{}, unexpected(op, "qualify frequency of peer "+name, q)
		}
		d.QualifyFreqMS, _ = strconv.Atoi(m[1])
	}
	return d, nil
}
