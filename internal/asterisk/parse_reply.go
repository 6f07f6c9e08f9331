package asterisk

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// IsNotRunning reports whether `asterisk -rx` failed because no Asterisk is
// running: it exits non-zero (1) and prints "Unable to connect to remote asterisk
// (does .../asterisk.ctl exist?)" (docs/asterisk.md#reloads-and-cli-replies). Every other failure exits 0,
// so both the status and the text are required.
func IsNotRunning(out []byte, exitCode int) bool {
	return exitCode != 0 && bytes.Contains(out, []byte(notRunningText))
}

// IsNoSuchCommand reports whether out is Asterisk's "No such command '...' (type
// 'core show help ...' for other possible commands)": the module that owns the
// command is not loaded, or the command does not exist on this version. The exit
// status is 0 in that case (docs/asterisk.md#reloads-and-cli-replies).
func IsNoSuchCommand(out []byte) bool {
	for _, l := range cliLines(out) {
		if strings.HasPrefix(l, noSuchCommandText) {
			return true
		}
	}
	return false
}

// Success texts of the reload commands (docs/asterisk.md#reloads-and-cli-replies).
const (
	dialplanReloaded = "Dialplan reloaded."
	moduleReloadedF  = "Module '%s' reloaded successfully."
)

// ParseReload checks the output of a reload command: "sip reload" must print
// nothing, "module reload <module>" must print "Module '<module>' reloaded
// successfully.", "dialplan reload" must print "Dialplan reloaded.". Log lines are
// skipped. Anything else is returned as an error wrapping ErrReloadFailed that
// quotes the text, or ErrNotRunning / ErrNoSuchCommand for those answers; a command
// not listed here (e.g. "pjsip reload", which stock 20.x lacks) is refused with
// ErrReloadFailed.
//
// A nil error proves only that Asterisk accepted the command. `sip reload` is
// asynchronous, and the other two print their text even when the configuration
// has errors, which reach only the log (docs/asterisk.md#reloads-and-cli-replies): verify the objects with
// `sip show peer`, `pjsip show endpoint` or `dialplan show` afterwards.
func ParseReload(command string, out []byte) error {
	cmd := strings.Join(strings.Fields(command), " ")
	op := fmt.Sprintf("parse %q", cmd)
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return err
	}
	var kept []string
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" {
			kept = append(kept, t)
		}
	}
	got := strings.Join(kept, "\n")
	var want string
	switch f := strings.Fields(cmd); {
	case cmd == "sip reload":
		want = ""
	case cmd == "dialplan reload":
		want = dialplanReloaded
	case len(f) == 3 && f[0] == "module" && f[1] == "reload":
		want = fmt.Sprintf(moduleReloadedF, f[2])
	default:
		return fmt.Errorf("%s: %w: no known success text for this command", op, ErrReloadFailed)
	}
	if got != want {
		if got == "" {
			return fmt.Errorf("%s: %w: no output, want %q", op, ErrReloadFailed, want)
		}
		return fmt.Errorf("%s: %w: asterisk said %q", op, ErrReloadFailed, got)
	}
	return nil
}

// Texts of `database get <family> <key>`.
const (
	dbValuePrefix = "Value:"
	dbNotFound    = "Database entry not found."
)

// ParseDatabaseGet reads the output of `database get <family> <key>` ("Value: X")
// and returns X. It returns an error wrapping ErrNotFound for "Database entry not
// found.", ErrNotRunning or ErrNoSuchCommand for those answers (func_db or
// res_db missing), and ErrUnexpectedOutput otherwise. Log lines are skipped.
func ParseDatabaseGet(out []byte) (string, error) {
	const op = "parse database get"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return "", err
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, dbValuePrefix):
			// Asterisk prints "Value: %s"; keep the value's own spaces.
			return strings.TrimPrefix(strings.TrimPrefix(l, dbValuePrefix), " "), nil
		case strings.TrimSpace(l) == dbNotFound:
			return "", fmt.Errorf("%s: %w", op, ErrNotFound)
		}
	}
	return "", unexpected(op, "no \"Value:\" line", firstLine(lines))
}

// coreVersionRE reads `core show version`, e.g. "Asterisk 20.20.1 built by root
// @ vm on a x86_64 running Linux on ...".
var coreVersionRE = regexp.MustCompile(`^Asterisk (\S+) built by `)

// ParseCoreVersion reads the output of `core show version` and returns the
// version, e.g. "20.20.1" or "11.25.3". It returns an error wrapping ErrNotRunning
// for that answer and ErrUnexpectedOutput when no version line is found.
func ParseCoreVersion(out []byte) (string, error) {
	const op = "parse core show version"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return "", err
	}
	for _, l := range lines {
		if m := coreVersionRE.FindStringSubmatch(l); m != nil {
			return m[1], nil
		}
	}
	return "", unexpected(op, "no version line", firstLine(lines))
}

// DialplanShow is the output of `dialplan show <context>` or `dialplan show
// <exten>@<context>`.
type DialplanShow struct {
	// Contexts in the order shown; with <exten>@<context>, the contexts it
	// includes that hold a matching extension follow, marked Included.
	Contexts []DialplanContext
	// Extensions, Priorities and ContextCount are the counts of the
	// "-= N extensions (N priorities) in N contexts. =-" line.
	Extensions   int
	Priorities   int
	ContextCount int
}

// DialplanContext is one "[ Context 'X' created by 'Y' ]" block.
type DialplanContext struct {
	Name string
	// Registrar is the module that created the context, e.g. pbx_config.
	Registrar string
	// Included is true for "[ Included context ... ]" blocks.
	Included   bool
	Extensions []DialplanExtension
	// Includes lists the contexts of the "Include =>" lines.
	Includes []string
}

// DialplanExtension is one extension and its priorities.
type DialplanExtension struct {
	// Name is the extension or pattern, e.g. 5000 or _1XXXX.
	Name string
	// CIDMatch is the caller id of "(CID match '...')", usually empty.
	CIDMatch   string
	Priorities []DialplanPriority
}

// DialplanPriority is one priority (or the hint) of an extension.
type DialplanPriority struct {
	// Number is the priority; 0 for a hint.
	Number int
	// Hint is true for a "hint: ..." line; App then holds the hinted device.
	Hint bool
	// Label is the priority label shown as "[label]", if any.
	Label string
	// App and Data are the application and its arguments: Dial and
	// SIP/omnileads/098098 for "Dial(SIP/omnileads/098098)".
	App  string
	Data string
	// Registrar is what the brackets at the end of the line hold: the file and
	// line that defined the priority ("extensions_custom.conf:3"), or the module
	// that added it ("pbx_config"). File and Line are split from it when possible.
	Registrar string
	File      string
	Line      int
}

// Find returns the first extension named exten in the context named context
// (included contexts too), and false when there is none.
func (d DialplanShow) Find(context, exten string) (DialplanExtension, bool) {
	for _, c := range d.Contexts {
		if c.Name != context {
			continue
		}
		for _, e := range c.Extensions {
			if e.Name == exten {
				return e, true
			}
		}
	}
	return DialplanExtension{}, false
}

var (
	dialplanContextRE = regexp.MustCompile(`^\[ (Included context|Context) '(.*)' created by '(.*)' \]$`)
	// dialplanExtenRE reads "  '<exten>' [(CID match '<cid>') ]=> <rest>".
	dialplanExtenRE = regexp.MustCompile(`^\s*'([^']*)' (?:\(CID match '([^']*)'\) )?=>\s*(.*)$`)
	// dialplanNextRE reads a further priority: "  [ [label]] <rest>".
	dialplanNextRE     = regexp.MustCompile(`^\s+(?:\[([^\]]*)\]\s+)?([0-9].*|hint: .*)$`)
	dialplanPrioRE     = regexp.MustCompile(`^([0-9]{1,9})\. (.*)$`)
	dialplanIncludeRE  = regexp.MustCompile(`^\s+Include =>\s+'([^']*)'`)
	dialplanOtherRE    = regexp.MustCompile(`^\s+(?:Ignore pattern|Alt\. Switch) =>`)
	dialplanFooterRE   = regexp.MustCompile(`^-= ([0-9]{1,9}) extensions? \(([0-9]{1,9}) priorit(?:y|ies)\) in ([0-9]{1,9}) contexts?\. =-$`)
	dialplanNotFoundRE = regexp.MustCompile(`^(?:There is no existence of .*|Command 'dialplan show .*' failed\.)$`)
)

// ParseDialplanShow reads the output of `dialplan show <context>` or `dialplan
// show <exten>@<context>`. It returns an error wrapping ErrNotFound for "There is
// no existence of ..." or "Command 'dialplan show ...' failed.", ErrNotRunning for
// that answer, and ErrUnexpectedOutput when a line cannot be read, the closing
// "-= ... =-" line is missing, or its extension or priority count disagrees with
// the lines shown. Log lines are skipped.
func ParseDialplanShow(out []byte) (DialplanShow, error) {
	const op = "parse dialplan show"
	lines := cliLines(out)
	if err := checkCLIFailure(op, lines); err != nil {
		return DialplanShow{}, err
	}
	for _, l := range lines {
		if dialplanNotFoundRE.MatchString(strings.TrimSpace(l)) {
			return DialplanShow{}, fmt.Errorf("%s: %w: %s", op, ErrNotFound, strings.TrimSpace(l))
		}
	}
	var (
		d      DialplanShow
		footer bool
	)
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if footer {
			return DialplanShow{}, unexpected(op, "line after the summary", line)
		}
		if m := dialplanFooterRE.FindStringSubmatch(line); m != nil {
			d.Extensions, _ = strconv.Atoi(m[1])
			d.Priorities, _ = strconv.Atoi(m[2])
			d.ContextCount, _ = strconv.Atoi(m[3])
			footer = true
			continue
		}
		if m := dialplanContextRE.FindStringSubmatch(line); m != nil {
			d.Contexts = append(d.Contexts, DialplanContext{Name: m[2], Registrar: m[3], Included: m[1] != "Context"})
			continue
		}
		if len(d.Contexts) == 0 {
			return DialplanShow{}, unexpected(op, "line before the first context", line)
		}
		if err := addDialplanLine(op, &d.Contexts[len(d.Contexts)-1], line); err != nil {
			return DialplanShow{}, err
		}
	}
	if !footer {
		return DialplanShow{}, unexpected(op, "no \"-= ... =-\" summary line", firstLine(lines))
	}
	var exts, prios int
	for _, c := range d.Contexts {
		exts += len(c.Extensions)
		for _, e := range c.Extensions {
			prios += len(e.Priorities)
		}
	}
	// pbx.c counts every extension and every priority (hints too) it prints.
	if exts != d.Extensions || prios != d.Priorities {
		return DialplanShow{}, unexpected(op, fmt.Sprintf("summary says %d extensions and %d priorities, lines show %d and %d",
			d.Extensions, d.Priorities, exts, prios), "")
	}
	return d, nil
}

// addDialplanLine adds one line inside a context block to c.
func addDialplanLine(op string, c *DialplanContext, line string) error {
	if m := dialplanExtenRE.FindStringSubmatch(line); m != nil {
		p, err := parseDialplanPriority(m[3])
		if err != nil {
			return unexpected(op, "priority", line)
		}
		c.Extensions = append(c.Extensions, DialplanExtension{Name: m[1], CIDMatch: m[2], Priorities: []DialplanPriority{p}})
		return nil
	}
	if m := dialplanIncludeRE.FindStringSubmatch(line); m != nil {
		c.Includes = append(c.Includes, m[1])
		return nil
	}
	if dialplanOtherRE.MatchString(line) {
		return nil
	}
	if m := dialplanNextRE.FindStringSubmatch(line); m != nil && len(c.Extensions) > 0 {
		p, err := parseDialplanPriority(m[2])
		if err != nil {
			return unexpected(op, "priority", line)
		}
		p.Label = m[1]
		e := &c.Extensions[len(c.Extensions)-1]
		e.Priorities = append(e.Priorities, p)
		return nil
	}
	return unexpected(op, "dialplan line", line)
}

// parseDialplanPriority reads "<n>. <App>(<data>)   [<registrar>]" or
// "hint: <device>   [<registrar>]".
func parseDialplanPriority(s string) (DialplanPriority, error) {
	s = strings.TrimRight(s, " ")
	// The registrar is the last bracketed group; app data may hold brackets
	// ("Set(x=$[1+1])") but the registrar never holds " [".
	i := strings.LastIndex(s, " [")
	if i < 0 || !strings.HasSuffix(s, "]") || i+2 > len(s)-1 {
		return DialplanPriority{}, ErrUnexpectedOutput
	}
	var p DialplanPriority
	p.Registrar = s[i+2 : len(s)-1]
	if j := strings.LastIndexByte(p.Registrar, ':'); j > 0 {
		if n, err := strconv.Atoi(p.Registrar[j+1:]); err == nil && n >= 0 {
			p.File, p.Line = p.Registrar[:j], n
		}
	}
	text := strings.TrimSpace(s[:i])
	if hint, ok := strings.CutPrefix(text, "hint: "); ok {
		p.Hint, p.App = true, hint
		return p, nil
	}
	m := dialplanPrioRE.FindStringSubmatch(text)
	if m == nil {
		return DialplanPriority{}, ErrUnexpectedOutput
	}
	p.Number, _ = strconv.Atoi(m[1])
	app := m[2]
	if open := strings.IndexByte(app, '('); open >= 0 && strings.HasSuffix(app, ")") {
		p.App, p.Data = app[:open], app[open+1:len(app)-1]
	} else {
		p.App = app
	}
	return p, nil
}
