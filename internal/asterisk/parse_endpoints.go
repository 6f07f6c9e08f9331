package asterisk

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// ContactStatus is the qualify status res_pjsip shows for a contact (docs/asterisk.md#reloads-and-cli-replies).
type ContactStatus string

// The contact statuses of `pjsip show endpoints`.
const (
	// ContactAvail: the last qualify was answered.
	ContactAvail ContactStatus = "Avail"
	// ContactUnavail: the last qualify got no answer.
	ContactUnavail ContactStatus = "Unavail"
	// ContactUnknown: no qualify result yet.
	ContactUnknown ContactStatus = "Unknown"
	// ContactNonQual: qualify has not run for this contact yet (or is off).
	ContactNonQual ContactStatus = "NonQual"
	// ContactCreated: Asterisk 13/15's name for a contact not qualified yet.
	ContactCreated ContactStatus = "Created"
	// ContactRemoved: the contact is being removed.
	ContactRemoved ContactStatus = "Removed"
)

// Reachable reports whether the contact answered its last qualify. Qualify counts
// any reply, even 401 or 404, so this proves the far side is up, not that the
// trunk carries calls (docs/asterisk.md#how-the-two-sides-relate).
func (s ContactStatus) Reachable() bool { return s == ContactAvail }

// Pending reports whether the status is not known yet (Unknown, NonQual, Created):
// with qualify_frequency=60 a contact stays NonQual for about a minute after a
// start although the far side is up. Poll with a deadline (docs/asterisk.md#reloads-and-cli-replies).
func (s ContactStatus) Pending() bool {
	return s == ContactUnknown || s == ContactNonQual || s == ContactCreated
}

// Contact is one "Contact:" line of an endpoint.
type Contact struct {
	// AOR is the aor the contact belongs to.
	AOR string
	// URI is the contact URI, e.g. sip:127.0.0.2:5060.
	URI  string
	Hash string
	// Status is the qualify status.
	Status ContactStatus
	// RTTMS is the qualify round trip in milliseconds when HasRTT.
	RTTMS float64
	// HasRTT is false when Asterisk printed nan (no answer yet or unreachable).
	HasRTT bool
}

// AuthRef is one "OutAuth:" or "InAuth:" line: the auth object and its user name.
type AuthRef struct {
	ID   string
	User string
}

// TransportRef is one "Transport:" line of an endpoint.
type TransportRef struct {
	ID string
	// Type is the protocol, e.g. udp.
	Type string
	// Bind is the transport's bind address:port.
	Bind string
}

// EndpointChannel is one "Channel:" line of an endpoint (a call in progress),
// with the "Exten:" line that follows it.
type EndpointChannel struct {
	ID    string
	State string
	Time  string
	Exten string
}

// Endpoint is one endpoint block of `pjsip show endpoints` or `pjsip show endpoint`.
type Endpoint struct {
	// Name is the endpoint id; the wizard section [X] makes endpoint X.
	Name string
	// CallerID is the caller id number shown after "<name>/", usually empty.
	CallerID string
	// State is the device state: "Not in use", "In use", "Busy", "Unavailable", ...
	State string
	// Channels and MaxChannels are "<n> of <max>"; MaxChannels is often "inf".
	Channels    string
	MaxChannels string
	OutAuth     []AuthRef
	InAuth      []AuthRef
	AORs        []string
	Contacts    []Contact
	Transports  []TransportRef
	// Identifies holds the identify object ids (the wizard makes X-identify).
	Identifies []string
	// Matches holds the identify match criteria, e.g. 127.0.0.2:5060/32.
	Matches        []string
	ActiveChannels []EndpointChannel
}

// Reachable reports whether any contact of the endpoint is Avail.
func (e Endpoint) Reachable() bool {
	for _, c := range e.Contacts {
		if c.Status.Reachable() {
			return true
		}
	}
	return false
}

// Pending reports whether no contact is Avail but at least one is still pending
// (Unknown, NonQual, Created): the endpoint is not known to be down yet.
func (e Endpoint) Pending() bool {
	if e.Reachable() {
		return false
	}
	for _, c := range e.Contacts {
		if c.Status.Pending() {
			return true
		}
	}
	return false
}

// FindEndpoint returns the endpoint called name, and false when there is none.
func FindEndpoint(eps []Endpoint, name string) (Endpoint, bool) {
	for _, e := range eps {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

var (
	// endpointLineRE reads the value of "Endpoint:": name[/cid], the device state
	// (which may hold single spaces, "Not in use") and "<n> of <max>". res_pjsip
	// puts at least two spaces between the columns.
	endpointLineRE = regexp.MustCompile(`^(\S+(?: \S+)*)\s{2,}(\S+(?: \S+)*)\s{2,}([0-9]+) of (\S+)$`)
	// objectsFoundRE is the last line of `pjsip show endpoints`.
	objectsFoundRE = regexp.MustCompile(`^Objects found: ([0-9]{1,9})$`)
)

// noObjectsFound is the whole output of `pjsip show endpoints` when there is none.
const noObjectsFound = "No objects found."

// ParseEndpoints reads the output of `pjsip show endpoints`. "No objects found."
// gives an empty slice and nil. It returns an error wrapping ErrNotRunning or
// ErrNoSuchCommand (res_pjsip not loaded) for those answers, and
// ErrUnexpectedOutput when the header separator or the "Objects found: N" line is
// missing, N disagrees with the blocks, or a line cannot be read. Log lines are
// skipped.
func ParseEndpoints(out []byte) ([]Endpoint, error) {
	const op = "parse pjsip show endpoints"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return nil, err
	}
	if firstLine(lines) == noObjectsFound {
		for _, l := range lines {
			if t := strings.TrimSpace(l); t != "" && t != noObjectsFound {
				return nil, unexpected(op, "line after "+noObjectsFound, l)
			}
		}
		return []Endpoint{}, nil
	}
	body, err := skipEndpointHeader(op, lines)
	if err != nil {
		return nil, err
	}
	found := -1
	for i, l := range body {
		if m := objectsFoundRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			found, _ = strconv.Atoi(m[1])
			if rest := firstLine(body[i+1:]); rest != "" {
				return nil, unexpected(op, "line after Objects found", rest)
			}
			body = body[:i]
			break
		}
	}
	if found < 0 {
		return nil, unexpected(op, "no \"Objects found: N\" line", "")
	}
	eps, err := parseEndpointBlocks(op, body)
	if err != nil {
		return nil, err
	}
	if found != len(eps) {
		return nil, unexpected(op, "Objects found disagrees with the "+strconv.Itoa(len(eps))+" endpoints", "Objects found: "+strconv.Itoa(found))
	}
	return eps, nil
}

// skipEndpointHeader returns the lines after the header block of <...>
// placeholders and its line of '=' (docs/asterisk.md#reloads-and-cli-replies).
func skipEndpointHeader(op string, lines []string) ([]string, error) {
	for i, l := range lines {
		if isRule(l) {
			return lines[i+1:], nil
		}
	}
	return nil, unexpected(op, "no header separator", firstLine(lines))
}

// isRule reports whether l is a separator line of '=' only.
func isRule(l string) bool {
	t := strings.TrimSpace(l)
	return len(t) >= 20 && strings.Trim(t, "=") == ""
}

// parseEndpointBlocks reads endpoint blocks: an "Endpoint:" line and the indented
// lines about its objects up to the next "Endpoint:". Labels this parser does not
// know are skipped, so a newer Asterisk adding one does not break the agents.
func parseEndpointBlocks(op string, lines []string) ([]Endpoint, error) {
	eps := []Endpoint{}
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		label, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			return nil, unexpected(op, "line without a label", line)
		}
		val = strings.TrimSpace(val)
		if label == "Endpoint" {
			e, err := parseEndpointLine(op, val, line)
			if err != nil {
				return nil, err
			}
			eps = append(eps, e)
			continue
		}
		if len(eps) == 0 {
			return nil, unexpected(op, "line before the first Endpoint", line)
		}
		if err := addEndpointLine(op, &eps[len(eps)-1], label, val, line); err != nil {
			return nil, err
		}
	}
	return eps, nil
}

// parseEndpointLine reads the value of an "Endpoint:" line.
func parseEndpointLine(op, val, line string) (Endpoint, error) {
	m := endpointLineRE.FindStringSubmatch(val)
	if m == nil {
		return Endpoint{}, unexpected(op, "endpoint line", line)
	}
	e := Endpoint{State: m[2], Channels: m[3], MaxChannels: m[4]}
	e.Name, e.CallerID, _ = strings.Cut(m[1], "/")
	if e.Name == "" {
		return Endpoint{}, unexpected(op, "endpoint without a name", line)
	}
	return e, nil
}

// addEndpointLine adds one labelled line to e.
func addEndpointLine(op string, e *Endpoint, label, val, line string) error {
	f := strings.Fields(val)
	switch label {
	case "OutAuth", "InAuth":
		if len(f) != 1 {
			return unexpected(op, "auth line", line)
		}
		id, user, _ := strings.Cut(f[0], "/")
		if label == "OutAuth" {
			e.OutAuth = append(e.OutAuth, AuthRef{ID: id, User: user})
		} else {
			e.InAuth = append(e.InAuth, AuthRef{ID: id, User: user})
		}
	case "Aor":
		// "<aor> <max_contacts>"
		if len(f) < 1 || len(f) > 2 {
			return unexpected(op, "aor line", line)
		}
		e.AORs = append(e.AORs, f[0])
	case "Contact":
		c, err := parseContact(f)
		if err != nil {
			return unexpected(op, "contact line", line)
		}
		e.Contacts = append(e.Contacts, c)
	case "Transport":
		// "<id> <type> <cos> <tos> <bind>"
		if len(f) != 5 {
			return unexpected(op, "transport line", line)
		}
		e.Transports = append(e.Transports, TransportRef{ID: f[0], Type: f[1], Bind: f[4]})
	case "Identify":
		if len(f) != 1 {
			return unexpected(op, "identify line", line)
		}
		id, _, _ := strings.Cut(f[0], "/")
		e.Identifies = append(e.Identifies, id)
	case "Match":
		if len(f) != 1 {
			return unexpected(op, "match line", line)
		}
		e.Matches = append(e.Matches, f[0])
	case "Channel":
		// "<id> <state> <time>"; a channel state may hold a space ("Dialing Offhook").
		if len(f) < 3 {
			return unexpected(op, "channel line", line)
		}
		e.ActiveChannels = append(e.ActiveChannels, EndpointChannel{
			ID: f[0], State: strings.Join(f[1:len(f)-1], " "), Time: f[len(f)-1],
		})
	case "Exten":
		if n := len(e.ActiveChannels); n > 0 && len(f) > 0 {
			e.ActiveChannels[n-1].Exten = f[0]
		}
	}
	return nil
}

// parseContact reads the fields of a "Contact:" line: "<aor>/<uri> <hash> <status>
// <rtt>", where rtt is in milliseconds or nan.
func parseContact(f []string) (Contact, error) {
	if len(f) != 4 {
		return Contact{}, ErrUnexpectedOutput
	}
	aor, uri, ok := strings.Cut(f[0], "/")
	if !ok || aor == "" {
		return Contact{}, ErrUnexpectedOutput
	}
	c := Contact{AOR: aor, URI: uri, Hash: f[1], Status: ContactStatus(f[2])}
	// glibc prints a NaN as "nan" or "-nan"; Go's ParseFloat takes no sign on NaN.
	if strings.EqualFold(strings.TrimLeft(f[3], "+-"), "nan") {
		return c, nil
	}
	rtt, err := strconv.ParseFloat(f[3], 64)
	if err != nil {
		return Contact{}, ErrUnexpectedOutput
	}
	if !math.IsNaN(rtt) && !math.IsInf(rtt, 0) {
		c.RTTMS, c.HasRTT = rtt, true
	}
	return c, nil
}
