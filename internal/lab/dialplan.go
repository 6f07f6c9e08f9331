package lab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// maxIncludeStack bounds include recursion in lookups (AST_PBX_MAX_STACK).
const maxIncludeStack = 128

// dialplan is pbx_config's view of extensions.conf: contexts, globals.
type dialplan struct {
	contexts map[string]*dpContext
	order    []string // declaration order
	globals  map[string]string
}

// dpContext is one context, merged over every category of that name.
type dpContext struct {
	name     string
	extens   []*dpExten // sorted the way Asterisk keeps them (ext_cmp)
	includes []string
}

// dpExten is one extension (or pattern) with its priorities.
type dpExten struct {
	name  string
	prios []*dpPrio // sorted by priority
}

// dpPrio is one priority: the application and its raw data, where it was defined.
type dpPrio struct {
	prio  int
	label string
	app   string
	data  string
	file  string
	line  int
}

// loadDialplan reads extensions.conf from dir as pbx_config does.
func loadDialplan(dir string) (*dialplan, []string, error) {
	conf, err := ReadConf(dir, "extensions.conf")
	if err != nil {
		return nil, nil, err
	}
	dp := &dialplan{contexts: map[string]*dpContext{}, globals: map[string]string{}}
	warnings := conf.Warnings
	for _, s := range conf.Sections {
		if s.Template {
			continue
		}
		switch s.Name {
		case "general":
			continue
		case "globals":
			for _, v := range s.Vars {
				dp.globals[v.Name] = v.Value
			}
			continue
		}
		ctx := dp.contexts[s.Name]
		if ctx == nil {
			// A context declared twice (e.g. [from-internal-custom] in
			// extensions_custom.conf and again in an included file) is one context.
			ctx = &dpContext{name: s.Name}
			dp.contexts[s.Name] = ctx
			dp.order = append(dp.order, s.Name)
		}
		lastExten, lastPrio := "", 0
		for _, v := range s.Vars {
			switch strings.ToLower(v.Name) {
			case "include":
				if !containsString(ctx.includes, v.Value) {
					ctx.includes = append(ctx.includes, v.Value)
				}
			case "exten", "same":
				p, exten, err := parseExtenLine(v, lastExten, lastPrio)
				if err != nil {
					warnings = append(warnings, err.Error())
					continue
				}
				lastExten, lastPrio = exten, p.prio
				if p.prio < 0 {
					continue // hints are not dialplan steps
				}
				if w := ctx.add(exten, p); w != "" {
					warnings = append(warnings, w)
				}
			}
		}
	}
	for _, c := range dp.contexts {
		sort.SliceStable(c.extens, func(i, j int) bool { return extCmp(c.extens[i].name, c.extens[j].name) < 0 })
	}
	return dp, warnings, nil
}

// parseExtenLine parses "ext,prio[(label)],App(data)" (exten =>) or
// "prio[(label)],App(data)" (same =>), pbx_config style.
func parseExtenLine(v Var, lastExten string, lastPrio int) (*dpPrio, string, error) {
	rest := v.Value
	exten := lastExten
	if strings.EqualFold(v.Name, "exten") {
		var ok bool
		exten, rest, ok = strings.Cut(rest, ",")
		if !ok {
			return nil, "", fmt.Errorf("invalid extension line at line %d of %s", v.Line, v.File)
		}
		exten = strings.TrimSpace(exten)
		if i := strings.IndexByte(exten, '/'); i > 0 {
			exten = exten[:i] // caller-id match: not modelled by the lab
		}
	} else if exten == "" {
		return nil, "", fmt.Errorf("no previous extension for 'same' at line %d of %s", v.Line, v.File)
	}
	pri, appl, _ := strings.Cut(rest, ",")
	pri = strings.TrimSpace(pri)
	label := ""
	if i := strings.IndexByte(pri, '('); i >= 0 && strings.HasSuffix(pri, ")") {
		label = pri[i+1 : len(pri)-1]
		pri = pri[:i]
	}
	p := &dpPrio{label: label, file: v.File, line: v.Line}
	switch {
	case pri == "hint":
		p.prio = -1
	case pri == "n":
		p.prio = lastPrio + 1
	case strings.HasPrefix(pri, "n+"):
		n, err := strconv.Atoi(pri[2:])
		if err != nil {
			return nil, "", fmt.Errorf("invalid priority %q at line %d of %s", pri, v.Line, v.File)
		}
		p.prio = lastPrio + n
	default:
		n, err := strconv.Atoi(pri)
		if err != nil || n < 1 {
			return nil, "", fmt.Errorf("invalid priority/label '%s' at line %d of %s", pri, v.Line, v.File)
		}
		p.prio = n
	}
	appl = strings.TrimSpace(appl)
	if i := strings.IndexByte(appl, '('); i >= 0 {
		p.app = strings.TrimSpace(appl[:i])
		data := appl[i+1:]
		if j := strings.LastIndexByte(data, ')'); j >= 0 {
			data = data[:j]
		}
		p.data = data
	} else if i := strings.IndexByte(appl, ','); i >= 0 {
		p.app, p.data = strings.TrimSpace(appl[:i]), appl[i+1:]
	} else {
		p.app = appl
	}
	return p, exten, nil
}

// add registers a priority; like Asterisk, a duplicate keeps the first one.
func (c *dpContext) add(exten string, p *dpPrio) string {
	var e *dpExten
	for _, x := range c.extens {
		if x.name == exten {
			e = x
			break
		}
	}
	if e == nil {
		e = &dpExten{name: exten}
		c.extens = append(c.extens, e)
	}
	for _, q := range e.prios {
		if q.prio == p.prio {
			return fmt.Sprintf("Unable to register extension '%s' priority %d in '%s', already in use (line %d of %s)",
				exten, p.prio, c.name, p.line, p.file)
		}
	}
	e.prios = append(e.prios, p)
	sort.Slice(e.prios, func(i, j int) bool { return e.prios[i].prio < e.prios[j].prio })
	return ""
}

// find returns the extension of context that number reaches: the context's own
// extensions first (in Asterisk's order: exact before patterns, most specific
// pattern first), then its includes, depth first.
func (dp *dialplan) find(context, number string) (*dpExten, string) {
	return dp.findIn(context, number, map[string]bool{}, 0)
}

func (dp *dialplan) findIn(context, number string, seen map[string]bool, depth int) (*dpExten, string) {
	c := dp.contexts[context]
	if c == nil || seen[context] || depth > maxIncludeStack {
		return nil, ""
	}
	seen[context] = true
	for _, e := range c.extens {
		if extenMatch(e.name, number) {
			return e, context
		}
	}
	for _, inc := range c.includes {
		if e, ctx := dp.findIn(inc, number, seen, depth+1); e != nil {
			return e, ctx
		}
	}
	return nil, ""
}

// prio returns priority n of e, or nil.
func (e *dpExten) prio(n int) *dpPrio {
	for _, p := range e.prios {
		if p.prio == n {
			return p
		}
	}
	return nil
}

// label returns the priority labelled l, or nil.
func (e *dpExten) label(l string) *dpPrio {
	for _, p := range e.prios {
		if p.label == l {
			return p
		}
	}
	return nil
}

// extenMatch is ast_extension_match: a plain extension matches itself ignoring
// dashes; a pattern (leading '_') uses X, Z, N, [set], '.' (one or more) and '!'
// (zero or more).
func extenMatch(pattern, number string) bool {
	if !strings.HasPrefix(pattern, "_") {
		return strings.ReplaceAll(pattern, "-", "") == strings.ReplaceAll(number, "-", "")
	}
	return patternMatch(pattern[1:], number)
}

func patternMatch(p, s string) bool {
	for len(p) > 0 {
		c := p[0]
		switch c {
		case '.':
			return len(s) > 0
		case '!':
			return true
		case '-':
			p = p[1:]
			continue
		}
		if len(s) == 0 {
			return false
		}
		var set string
		switch c {
		case 'X', 'x':
			set = "0123456789"
		case 'Z', 'z':
			set = "123456789"
		case 'N', 'n':
			set = "23456789"
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return false
			}
			set = expandSet(p[1:end])
			p = p[end:]
		default:
			set = string(c)
		}
		if !strings.ContainsRune(set, rune(s[0])) {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// expandSet expands "0-35" into "012345".
func expandSet(spec string) string {
	var b strings.Builder
	for i := 0; i < len(spec); i++ {
		if i+2 < len(spec) && spec[i+1] == '-' {
			for c := spec[i]; c <= spec[i+2]; c++ {
				b.WriteByte(c)
				if c == 255 {
					break
				}
			}
			i += 2
			continue
		}
		b.WriteByte(spec[i])
	}
	return b.String()
}

// extCmp is Asterisk's ext_cmp: plain extensions sort before patterns (by strcmp
// ignoring dashes); patterns by how many characters each position accepts.
func extCmp(a, b string) int {
	pa, pb := strings.HasPrefix(a, "_"), strings.HasPrefix(b, "_")
	switch {
	case !pa && !pb:
		return strings.Compare(strings.ReplaceAll(a, "-", ""), strings.ReplaceAll(b, "-", ""))
	case !pa:
		return -1
	case !pb:
		return 1
	}
	wa, wb := patternWeights(a[1:]), patternWeights(b[1:])
	for i := 0; i < len(wa) && i < len(wb); i++ {
		if wa[i] != wb[i] {
			if wa[i] < wb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(wa) < len(wb):
		return -1
	case len(wa) > len(wb):
		return 1
	}
	return 0
}

// patternWeights gives each pattern position a weight: the number of characters it
// accepts (times 256, plus the lowest one), '.' and '!' heavier than any set.
func patternWeights(p string) []int {
	var w []int
	for i := 0; i < len(p); i++ {
		var set string
		switch c := p[i]; c {
		case '-':
			continue
		case '.':
			w = append(w, 0x20000)
			continue
		case '!':
			w = append(w, 0x30000)
			continue
		case 'X', 'x':
			set = "0123456789"
		case 'Z', 'z':
			set = "123456789"
		case 'N', 'n':
			set = "23456789"
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				set = "["
				break
			}
			set = expandSet(p[i+1 : i+end])
			i += end
		default:
			set = string(c)
		}
		lo := byte(255)
		for j := 0; j < len(set); j++ {
			lo = min(lo, set[j])
		}
		w = append(w, len(set)<<8|int(lo))
	}
	return w
}

// dialplanCounters are show_dialplan_helper's counters.
type dialplanCounters struct {
	contexts, extens, prios    int
	contextExists, extenExists bool
}

// formatDialplanShow renders `dialplan show [[exten@]context]` (pbx.c
// handle_show_dialplan) and reports whether the command failed.
func formatDialplanShow(dp *dialplan, arg string) (string, bool) {
	var exten, context string
	if arg != "" {
		if e, c, ok := strings.Cut(arg, "@"); ok {
			exten, context = e, c
		} else {
			context = arg
		}
	}
	var b strings.Builder
	var n dialplanCounters
	names := dp.order
	if context != "" {
		names = []string{context}
	} else {
		// Asterisk walks its context list newest first.
		names = make([]string, len(dp.order))
		for i, c := range dp.order {
			names[len(dp.order)-1-i] = c
		}
	}
	for _, c := range names {
		dp.showContext(&b, c, exten, false, &n, []string{c})
	}
	if context != "" && !n.contextExists {
		fmt.Fprintf(&b, "There is no existence of '%s' context\n", context)
		return b.String(), false
	}
	if exten != "" && !n.extenExists {
		if context != "" {
			fmt.Fprintf(&b, "There is no existence of %s@%s extension\n", exten, context)
		} else {
			fmt.Fprintf(&b, "There is no existence of '%s' extension in all contexts\n", exten)
		}
		return b.String(), false
	}
	plural := func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	fmt.Fprintf(&b, "-= %d %s (%d %s) in %d %s. =-\n",
		n.extens, plural(n.extens, "extension", "extensions"),
		n.prios, plural(n.prios, "priority", "priorities"),
		n.contexts, plural(n.contexts, "context", "contexts"))
	return b.String(), true
}

// showContext is show_dialplan_helper for one context.
func (dp *dialplan) showContext(b *strings.Builder, name, exten string, included bool, n *dialplanCounters, stack []string) {
	c := dp.contexts[name]
	if c == nil {
		return
	}
	n.contextExists = true
	printed := false
	header := func() {
		if printed {
			return
		}
		printed = true
		n.contexts++
		if included {
			fmt.Fprintf(b, "[ Included context '%s' created by 'pbx_config' ]\n", name)
		} else {
			fmt.Fprintf(b, "[ Context '%s' created by 'pbx_config' ]\n", name)
		}
	}
	if exten == "" {
		header()
	}
	for _, e := range c.extens {
		if exten != "" && !extenMatch(e.name, exten) {
			continue
		}
		n.extenExists = true
		header()
		n.extens++
		for i, p := range e.prios {
			n.prios++
			first := ""
			if i == 0 {
				first = "'" + e.name + "' =>"
			} else if p.label != "" {
				first = "   [" + p.label + "]"
			}
			fmt.Fprintf(b, "  %-17s %-45s [%s:%d]\n", first, fmt.Sprintf("%d. %s(%s)", p.prio, p.app, p.data), p.file, p.line)
		}
	}
	for _, inc := range c.includes {
		if exten == "" {
			fmt.Fprintf(b, "  Include =>        %-45s [%s]\n", "'"+inc+"'", "pbx_config")
			continue
		}
		if containsString(stack, inc) || len(stack) >= maxIncludeStack {
			continue
		}
		dp.showContext(b, inc, exten, true, n, append(stack, inc))
	}
	if printed {
		b.WriteString("\n")
	}
}
