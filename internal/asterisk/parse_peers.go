package asterisk

import (
	"regexp"
	"strconv"
	"strings"
)

// PeerStatus is the qualify status chan_sip shows for a peer (docs/asterisk.md#reloads-and-cli-replies).
type PeerStatus string

// The statuses of `sip show peers` and `sip show peer`.
const (
	// PeerStatusOK: the last qualify was answered within maxms.
	PeerStatusOK PeerStatus = "OK"
	// PeerStatusLagged: the last qualify was answered, later than maxms.
	PeerStatusLagged PeerStatus = "LAGGED"
	// PeerStatusUnreachable: the last qualify got no answer.
	PeerStatusUnreachable PeerStatus = "UNREACHABLE"
	// PeerStatusUnknown: qualify is on but no answer has come yet.
	PeerStatusUnknown PeerStatus = "UNKNOWN"
	// PeerStatusUnmonitored: qualify is off.
	PeerStatusUnmonitored PeerStatus = "Unmonitored"
)

// Answered reports whether the peer answered its last qualify (OK or LAGGED):
// what chan_sip counts as "Monitored: N online".
func (s PeerStatus) Answered() bool {
	return s == PeerStatusOK || s == PeerStatusLagged
}

// Reachable reports whether chan_sip will dial the peer now: only OK. A LAGGED
// peer answered, but later than its qualifymax, and chan_sip refuses calls to it
// (cause 20) exactly as to an UNREACHABLE one. Qualify counts any reply, even 401
// or 404, so OK proves the far side is up, not that the trunk carries calls
// (docs/asterisk.md#how-the-two-sides-relate).
func (s PeerStatus) Reachable() bool { return s == PeerStatusOK }

// Pending reports whether the status is not known yet: UNKNOWN means qualify has
// not been answered since the peer was (re)loaded, not that it is down. Poll with a
// deadline instead of failing (docs/asterisk.md#reloads-and-cli-replies).
func (s PeerStatus) Pending() bool {
	return s == PeerStatusUnknown
}

// Peer is one row of `sip show peers`.
type Peer struct {
	// Name is the peer (section) name. When Truncated, it may be a prefix of it.
	Name string
	// User is the defaultuser shown after the slash, empty when there is none.
	User string
	// Host is the peer's address, "(Unspecified)" when it has none.
	Host string
	// Port is the peer's port, 0 when it has none.
	Port int
	// Dynamic is true for host=dynamic peers (the Dyn column shows D).
	Dynamic bool
	// Status is the qualify status.
	Status PeerStatus
	// LatencyMS is the qualify round trip of OK and LAGGED peers.
	LatencyMS int
	// HasLatency is true when LatencyMS was shown.
	HasLatency bool
	// Description is the peer's description=, empty on Asterisk 1.8.
	Description string
	// Truncated is true when the Name/username cell filled its 25 characters, so
	// Name or User may have been cut (docs/asterisk.md#reloads-and-cli-replies).
	Truncated bool
}

// Reachable reports whether chan_sip will dial the peer now (OK; not LAGGED).
func (p Peer) Reachable() bool { return p.Status.Reachable() }

// peerNameWidth is the width chan_sip cuts the Name/username cell at (%-25.25s).
const peerNameWidth = 25

var (
	// peerRowRE reads a row after its first cell. Only Name/username and Host have
	// a fixed width; Dyn/Forcerport/Comedia/ACL may be blank or hold spaces
	// ("Auto (No)") and a long status ("LAGGED (2500 ms)") shifts everything after
	// it, so the row is anchored on "<port> <status>" (docs/asterisk.md#reloads-and-cli-replies).
	peerRowRE = regexp.MustCompile(`^(\S+)(.*?)\s([0-9]{1,5})\s+(OK \(([0-9]{1,9}) ms\)|LAGGED \(([0-9]{1,9}) ms\)|UNREACHABLE|UNKNOWN|Unmonitored)(?:\s+(.*?))?\s*$`)

	// peersSummaryRE is the line chan_sip prints after the rows.
	peersSummaryRE = regexp.MustCompile(`^([0-9]{1,9}) sip peers \[Monitored: ([0-9]{1,9}) online, ([0-9]{1,9}) offline Unmonitored: ([0-9]{1,9}) online, ([0-9]{1,9}) offline\]$`)
)

// cachedRT is what the Realtime column shows for a realtime peer held in memory.
const cachedRT = "Cached RT"

// ParsePeers reads the output of `sip show peers`. It accepts the header of
// Asterisk 11.8+ (with Comedia), of 10 to 11.7 (no Comedia) and of 1.8 (no
// Description), and checks the trailing "N sip peers [Monitored: ...]" line against
// the rows when it is there. Log lines are skipped. It returns an error wrapping
// ErrNotRunning or ErrNoSuchCommand (chan_sip not loaded) for those answers, and
// ErrUnexpectedOutput when there is no header, a row cannot be read or the summary
// disagrees with the rows. A header without rows gives an empty, non-nil slice.
func ParsePeers(out []byte) ([]Peer, error) {
	const op = "parse sip show peers"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return nil, err
	}
	var (
		peers       []Peer
		header      bool
		hasDesc     bool
		hasRealtime bool
		summary     []string
	)
	for _, line := range lines {
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "Name/username "):
			if header {
				return nil, unexpected(op, "second header", line)
			}
			header = true
			fields := strings.Fields(line)
			hasDesc = containsWord(fields, "Description")
			hasRealtime = containsWord(fields, "Realtime")
			peers = []Peer{}
			continue
		case !header:
			return nil, unexpected(op, "line before the header", line)
		case summary != nil:
			return nil, unexpected(op, "line after the summary", line)
		}
		if m := peersSummaryRE.FindStringSubmatch(line); m != nil {
			summary = m
			continue
		}
		p, err := parsePeerRow(op, line, hasDesc, hasRealtime)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	if !header {
		return nil, unexpected(op, "no Name/username header", firstLine(lines))
	}
	if summary != nil {
		if err := checkPeersSummary(op, summary, peers); err != nil {
			return nil, err
		}
	}
	return peers, nil
}

// parsePeerRow reads one peer row.
func parsePeerRow(op, line string, hasDesc, hasRealtime bool) (Peer, error) {
	cell, rest, ok := strings.Cut(line, " ")
	if !ok || cell == "" {
		return Peer{}, unexpected(op, "peer row", line)
	}
	m := peerRowRE.FindStringSubmatch(strings.TrimLeft(rest, " "))
	if m == nil {
		return Peer{}, unexpected(op, "peer row", line)
	}
	p := Peer{Host: m[1], Truncated: len(cell) >= peerNameWidth}
	p.Name, p.User, _ = strings.Cut(cell, "/")
	if p.Name == "" {
		return Peer{}, unexpected(op, "peer row without a name", line)
	}
	if cells := strings.Fields(m[2]); len(cells) > 0 && cells[0] == "D" {
		p.Dynamic = true
	}
	p.Port, _ = strconv.Atoi(m[3]) // [0-9]{1,5} always converts
	p.Status, p.LatencyMS, p.HasLatency = splitPeerStatus(m[4], m[5], m[6])
	tail := m[7]
	if hasRealtime {
		tail = strings.TrimSpace(strings.TrimSuffix(tail, cachedRT))
	}
	if hasDesc {
		p.Description = tail
	}
	return p, nil
}

// splitPeerStatus turns the status text and the OK/LAGGED latency captures into a
// PeerStatus and latency.
func splitPeerStatus(text, okMS, laggedMS string) (PeerStatus, int, bool) {
	switch {
	case okMS != "":
		ms, _ := strconv.Atoi(okMS)
		return PeerStatusOK, ms, true
	case laggedMS != "":
		ms, _ := strconv.Atoi(laggedMS)
		return PeerStatusLagged, ms, true
	}
	return PeerStatus(text), 0, false
}

// checkPeersSummary compares the summary line with the rows: chan_sip counts OK
// and LAGGED as monitored online, UNREACHABLE and UNKNOWN as monitored offline.
func checkPeersSummary(op string, m []string, peers []Peer) error {
	n := make([]int, 5)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	var on, off, unmon int
	for _, p := range peers {
		switch {
		case p.Status.Answered():
			on++
		case p.Status == PeerStatusUnmonitored:
			unmon++
		default:
			off++
		}
	}
	if n[0] != len(peers) || n[1] != on || n[2] != off || n[3]+n[4] != unmon {
		return unexpected(op, "summary disagrees with the "+strconv.Itoa(len(peers))+" rows", m[0])
	}
	return nil
}

// FindPeer returns the peer called name. A row whose cell was cut at 25
// characters matches when its Name is a prefix of name, provided no other row
// does too; use `sip show peer <name>` when that is not precise enough. It returns
// false when no single peer matches.
func FindPeer(peers []Peer, name string) (Peer, bool) {
	var (
		cut   Peer
		ncuts int
	)
	for _, p := range peers {
		if p.Name == name {
			return p, true
		}
		if p.Truncated && p.User == "" && strings.HasPrefix(name, p.Name) {
			cut = p
			ncuts++
		}
	}
	if ncuts == 1 {
		return cut, true
	}
	return Peer{}, false
}

// containsWord reports whether words holds w.
func containsWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// firstLine returns the first non-blank line, for error messages.
func firstLine(lines []string) string {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	return ""
}
