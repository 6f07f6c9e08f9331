package events

import (
	"fmt"
	"strings"
)

// problems collects every problem of a payload so one error names them all.
type problems []error

func (p *problems) addErr(err error) { *p = append(*p, err) }

func (p *problems) add(sentinel error, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

func (p *problems) nonEmpty(field, v string) {
	if v == "" {
		p.add(ErrInvalidField, "%s is required", field)
	}
}

func (p *problems) port(field string, v int) {
	if v < 1 || v > 65535 {
		p.add(ErrInvalidField, "%s %d is not a port (1-65535)", field, v)
	}
}

func (p *problems) list(field string, vs []string) {
	if len(vs) == 0 {
		p.add(ErrInvalidField, "%s needs at least one entry", field)
	}
	for i, v := range vs {
		p.nonEmpty(fmt.Sprintf("%s[%d]", field, i), v)
	}
}

// err returns nil without problems, the one problem, or all of them on one line
// (a log line stays one line), each still matched by errors.Is.
func (p problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return joined(p)
}

// joined is errors.Join on one line.
type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }
