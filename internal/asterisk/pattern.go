package asterisk

import (
	"errors"
	"fmt"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// OMLAgentPattern is how OMniLeads' [from-pbx] recognises an agent call: the SIP
// number (four digits starting with 1) followed by the agent id, ${EXTEN:4}
// (docs/asterisk.md#calls-from-the-pbx-to-omnileads).
const OMLAgentPattern = "_1XXX."

// Pattern is a compiled Asterisk extension pattern over digits (docs/asterisk.md#calls-from-the-pbx-to-omnileads):
// X is 0-9, Z is 1-9, N is 2-9, [..] a set with ranges, and a final . (one or
// more of anything) or ! (zero or more).
type Pattern struct {
	fixed []digitSet
	// rest is '.', '!' or 0 for none.
	rest byte
}

// digitSet says which digits one pattern position accepts.
type digitSet [10]bool

// ErrBadPattern means a pattern the allow-list lets through but Asterisk
// would misread.
var ErrBadPattern = errors.New("bad dialplan pattern")

// ErrCatchAllPattern means an agent pattern matches numbers outside the agents'
// range (OMLAgentPattern).
var ErrCatchAllPattern = errors.New("agent pattern wider than the agents' numbers")

// CompilePattern parses p, which starts with '_'. It returns an error wrapping
// ErrBadPattern for what the allow-list lets through but Asterisk would misread:
// an unclosed or empty set, a stray ] or -, or a wildcard that is not last.
func CompilePattern(p string) (Pattern, error) {
	var out Pattern
	if len(p) < 2 || p[0] != '_' {
		return out, fmt.Errorf("%w: %q does not start with _", ErrBadPattern, textclip.Value(p))
	}
	for i := 1; i < len(p); i++ {
		if out.rest != 0 {
			return out, fmt.Errorf("%w: %q: %c must be the last character", ErrBadPattern, textclip.Value(p), out.rest)
		}
		var set digitSet
		switch c := p[i]; {
		case c >= '0' && c <= '9':
			set[c-'0'] = true
		case c == 'X':
			set = digitRange(0, 9)
		case c == 'Z':
			set = digitRange(1, 9)
		case c == 'N':
			set = digitRange(2, 9)
		case c == '.' || c == '!':
			out.rest = c
			continue
		case c == '[':
			end := i + 1
			for end < len(p) && p[end] != ']' {
				end++
			}
			if end == len(p) {
				return out, fmt.Errorf("%w: %q: [ without ]", ErrBadPattern, textclip.Value(p))
			}
			var err error
			if set, err = parseSet(p[i+1 : end]); err != nil {
				return out, fmt.Errorf("%w: %q: %w", ErrBadPattern, textclip.Value(p), err)
			}
			i = end
		default:
			return out, fmt.Errorf("%w: %q: unexpected %q", ErrBadPattern, textclip.Value(p), c)
		}
		out.fixed = append(out.fixed, set)
	}
	return out, nil
}

func digitRange(lo, hi byte) digitSet {
	var s digitSet
	for d := lo; d <= hi; d++ {
		s[d] = true
	}
	return s
}

// parseSet reads the inside of [..]: digits and ranges such as 1-5.
func parseSet(body string) (digitSet, error) {
	var s digitSet
	if body == "" {
		return s, errors.New("empty []")
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c < '0' || c > '9' {
			return s, fmt.Errorf("%q inside []", c)
		}
		if i+2 < len(body) && body[i+1] == '-' {
			hi := body[i+2]
			if hi < c || hi > '9' {
				return s, fmt.Errorf("bad range %c-%c", c, hi)
			}
			for d := c; d <= hi; d++ {
				s[d-'0'] = true
			}
			i += 2
			continue
		}
		s[c-'0'] = true
	}
	return s, nil
}

// match reports whether the pattern matches a number of digits.
func (p Pattern) Match(number string) bool {
	switch {
	case p.rest == '.' && len(number) <= len(p.fixed):
		return false
	case p.rest == '!' && len(number) < len(p.fixed):
		return false
	case p.rest == 0 && len(number) != len(p.fixed):
		return false
	}
	for i, set := range p.fixed {
		c := number[i]
		if c < '0' || c > '9' || !set[c-'0'] {
			return false
		}
	}
	return true
}

// MustCompilePattern compiles a pattern the caller itself defines.
func MustCompilePattern(p string) Pattern {
	c, err := CompilePattern(p)
	if err != nil {
		panic(err)
	}
	return c
}

// minLen is the length of the shortest number the pattern matches.
func (p Pattern) minLen() int {
	if p.rest == '.' {
		return len(p.fixed) + 1
	}
	return len(p.fixed)
}

// at is the set of digits the pattern accepts at position i of a number at
// least that long: its fixed set there, or any digit under its wildcard.
func (p Pattern) at(i int) digitSet {
	if i < len(p.fixed) {
		return p.fixed[i]
	}
	return digitRange(0, 9)
}

// outside returns a number p matches and q does not, or "" when every number p
// matches q matches too (p lies within q). q is a pattern whose tail is . or !
// (a range such as OMniLeads' _1XXX.). A pattern that matches the empty number
// (_!) gives "(none)".
func (p Pattern) Outside(q Pattern) string {
	example := func(n int, pos int, d byte) string {
		b := make([]byte, n)
		for i := range b {
			set := p.at(i)
			for c := byte(0); c <= 9; c++ {
				if set[c] {
					b[i] = '0' + c
					break
				}
			}
		}
		if pos >= 0 {
			b[pos] = '0' + d
		}
		return string(b)
	}
	if p.rest == 0 && q.rest != 0 && len(p.fixed) < q.minLen() || p.rest != 0 && p.minLen() < q.minLen() {
		if p.minLen() == 0 {
			return "(none)"
		}
		return example(p.minLen(), -1, 0)
	}
	for i := range q.fixed {
		if i >= p.minLen() && p.rest == 0 {
			break
		}
		ps, qs := p.at(i), q.fixed[i]
		for d := byte(0); d <= 9; d++ {
			if ps[d] && !qs[d] {
				return example(max(p.minLen(), i+1), i, d)
			}
		}
	}
	return ""
}

// omlAgents is OMLAgentPattern compiled.
var omlAgents = MustCompilePattern(OMLAgentPattern)

// OMLAgentCall reports whether OMniLeads' [from-pbx] takes number for an agent
// call (it matches OMLAgentPattern).
func OMLAgentCall(number string) bool { return omlAgents.Match(number) }

// CheckAgentPattern reports an error unless v is a safe dialplan pattern that
// lies within OMniLeads' agent range: every number the PBX's agent route
// matches goes to OMniLeads, and a catch-all (_X., _!, _.) would send
// emergency numbers and every outside call there. The planner holds a fleet
// file to it, and the agent every trunk before it writes (CheckTrunk), so a
// trunk that did not come through the planner is held to it too.
func CheckAgentPattern(v string) error {
	if err := CheckPattern(v); err != nil {
		return err
	}
	p, err := CompilePattern(v)
	if err != nil {
		return err
	}
	if n := p.Outside(omlAgents); n != "" {
		return fmt.Errorf("%w: %s also matches numbers that are no agent's, such as %s: the PBX would send them to OMniLeads; "+
			"agents are reached by a SIP number 1000-1999 then the agent id (%s)", ErrCatchAllPattern, textclip.Value(v), n, OMLAgentPattern)
	}
	return nil
}
