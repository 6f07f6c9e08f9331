package planner

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// This file turns what the YAML decoder says into problems an operator can act
// on: a path and a line for every unknown key, type error and syntax error. The
// decoder with KnownFields(true) decides whether the file is acceptable; the
// second parse into a yaml.Node tree here only explains its errors, so it runs
// only when there is something to explain.

var (
	// lineMsgRE splits "line 7: msg" and "yaml: line 7: msg".
	lineMsgRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// columnRE reads the column typeError puts in front of its message.
	columnRE = regexp.MustCompile(`^@(\d+) (.*)$`)
	// quotedRE finds the value the decoder quotes in backquotes.
	quotedRE = regexp.MustCompile("`([^`]*)`")
	// keyLikeRE is what an unknown key must look like to be repeated in an
	// error: a lower-case name like the file's own keys (a typo of one).
	keyLikeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	// unmarshalRE reads yaml's "cannot unmarshal !!str `abc` into int".
	unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")
)

// decodeProblems explains an error of parsing the fleet file (root nil: it
// did not parse) or of decoding root, its node tree, into File. Unknown keys
// never reach here: checkShape has refused them on root before the decode.
func decodeProblems(root *yaml.Node, err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := lineMsgRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		var at path
		if m := quotedRE.FindStringSubmatch(msg); m != nil {
			// "cannot decode !!str `x` as a !!int" names no line: find the value,
			// and never show it (it may be the secret, tagged by mistake).
			if line == 0 && root != nil {
				if n := findValue(root, m[1]); n != nil {
					line = n.Line
					at, _ = pathAtLine(root, line, n.Column, m[1])
				}
			}
			msg = quotedRE.ReplaceAllString(msg, hiddenValue)
		}
		return []Problem{{Path: at.String(), Line: line, Msg: "not valid YAML: " + msg, at: at}}
	}

	var probs []Problem
	for _, e := range te.Errors {
		line, msg := 0, e
		if m := lineMsgRE.FindStringSubmatch(e); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		column := 0
		if m := columnRE.FindStringSubmatch(msg); m != nil {
			column, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		value := ""
		if m := quotedRE.FindStringSubmatch(msg); m != nil {
			value = m[1]
		}
		at, node := pathAtLine(root, line, column, value)
		// The decoder cuts long values short ("fivetho..."); show the whole value.
		if node != nil && strings.HasSuffix(value, "...") && strings.HasPrefix(node.Value, strings.TrimSuffix(value, "...")) {
			msg = strings.Replace(msg, "`"+value+"`", "`"+textclip.Value(node.Value)+"`", 1)
		}
		msg = friendlier(msg)
		if i := slices.Index(at, any("secret")); i >= 0 {
			// Nothing under secret is shown: not a key of a mapping written
			// there, nor a value.
			at = at[:i+1]
			msg = quotedRE.ReplaceAllString(msg, hiddenValue)
		}
		probs = append(probs, Problem{Path: at.String(), Line: line, Msg: msg, at: at})
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
	return probs
}

// hiddenValue replaces a value a message would quote when it may be a secret.
const hiddenValue = "(value not shown)"

// findValue returns the first scalar of the tree whose value is v, or nil.
func findValue(n *yaml.Node, v string) *yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Value == v {
		return n
	}
	for _, c := range n.Content {
		if f := findValue(c, v); f != nil {
			return f
		}
	}
	return nil
}

// textProblem returns a problem for the first byte of data that is not text a
// fleet file may hold: a NUL, another control character (tab, newline and
// carriage return aside), or a byte that is not UTF-8; nil when there is
// none. The YAML decoder refuses them too, but says neither line nor column.
func textProblem(data []byte) *Problem {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return &Problem{Line: line, Msg: fmt.Sprintf("column %d: byte 0x%02x is not UTF-8: a fleet file is UTF-8 text", col, data[i])}
		case r == 0:
			return &Problem{Line: line, Msg: fmt.Sprintf("column %d: a NUL byte: a fleet file is text", col)}
		case (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f:
			return &Problem{Line: line, Msg: fmt.Sprintf("column %d: control character 0x%02x: a fleet file is text", col, r)}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// friendlier rewrites the decoder's Go-flavoured type errors in the file's terms.
func friendlier(msg string) string {
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var want string
	switch into := m[3]; {
	case into == "int":
		want = "a whole number"
	case into == "string":
		want = "a single value"
	case strings.HasPrefix(into, "[]"):
		want = "a list, e.g. [a, b]"
	default:
		want = "a mapping of keys and values"
	}
	got := map[string]string{"str": "text", "int": "a number", "float": "a number", "bool": "a boolean",
		"seq": "a list", "map": "a mapping", "null": "nothing"}[m[1]]
	if got == "" {
		got = m[1]
	}
	return "must be " + want + ", not " + got + " `" + textclip.Value(m[2]) + "`"
}

// yamlField is one key a struct accepts.
type yamlField struct {
	name string
	typ  reflect.Type
}

// yamlFields lists the keys a struct accepts, in declaration order, following
// inline structs the way the decoder does.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
			continue
		case strings.Contains(opts, "inline"):
			out = append(out, yamlFields(f.Type)...)
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		out = append(out, yamlField{name: name, typ: f.Type})
	}
	return out
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkShape walks the file's YAML against the type it decodes into and
// reports what the decoder cannot say well or says nothing of: every key the
// type does not have, with the path and the keys it does (KnownFields names
// the key only), and every integer field written as a float (port: 5080.9,
// which the decoder silently keeps as 5080).
func checkShape(root *yaml.Node, t reflect.Type) []Problem {
	w := shapeWalker{fields: map[reflect.Type][]yamlField{}}
	w.walk(root, t)
	return w.out
}

// shapeWalker is one checkShape pass. It keeps the way down as a stack of
// plain steps and builds a path only for a problem: a 10,000-site file is
// walked without a path or a field list made per node.
type shapeWalker struct {
	out    []Problem
	stack  []shapeStep
	fields map[reflect.Type][]yamlField
}

// shapeStep is a mapping key, or (item set) an item of a sequence.
type shapeStep struct {
	key   string
	index int
	item  *yaml.Node
}

// path is where the walk is, as problems name it.
func (w *shapeWalker) path() path {
	p := make(path, 0, len(w.stack)+1)
	for _, s := range w.stack {
		if s.item != nil {
			p = append(p, elemRef(p, s.index, s.item))
		} else {
			p = append(p, s.key)
		}
	}
	return p
}

func (w *shapeWalker) fieldsOf(t reflect.Type) []yamlField {
	f, ok := w.fields[t]
	if !ok {
		f = yamlFields(t)
		w.fields[t] = f
	}
	return f
}

func (w *shapeWalker) walk(n *yaml.Node, t reflect.Type) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, t)
		}
		return
	case yaml.AliasNode:
		return // checked where the anchor is defined
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			p := w.path()
			w.out = append(w.out, Problem{Path: p.String(), Line: n.Line, at: p,
				Msg: fmt.Sprintf("must be a whole number, not %s", strconv.Quote(textclip.Value(n.Value)))})
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := w.fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				// The merged mappings' keys land here, so they are checked
				// against this type, wherever their anchors are.
				for _, src := range mergeSources(val) {
					if src != n { // a mapping merged into itself adds nothing
						w.walk(src, t)
					}
				}
				continue
			}
			idx := slices.IndexFunc(fields, func(f yamlField) bool { return f.name == k.Value })
			if idx < 0 {
				p := w.path()
				if !keyLikeRE.MatchString(k.Value) {
					// Not a key anyone meant (a secret pasted as a key, text with
					// a newline): neither shown nor suggested for.
					w.out = append(w.out, Problem{Path: p.String(), Line: k.Line, Msg: unknownKeyMsg("", p, fields), at: p})
					continue
				}
				at := p.with(k.Value)
				w.out = append(w.out, Problem{Path: at.String(), Line: k.Line, Msg: unknownKeyMsg(k.Value, p, fields), at: at})
				continue
			}
			w.stack = append(w.stack, shapeStep{key: k.Value})
			w.walk(val, fields[idx].typ)
			w.stack = w.stack[:len(w.stack)-1]
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			w.stack = append(w.stack, shapeStep{index: i, item: c})
			w.walk(c, t.Elem())
			w.stack = w.stack[:len(w.stack)-1]
		}
	}
}

// mergeSources returns the mappings a merge key's value brings in: one
// mapping, an alias of one, or a sequence of those.
func mergeSources(v *yaml.Node) []*yaml.Node {
	switch v.Kind {
	case yaml.AliasNode:
		if v.Alias != nil && v.Alias.Kind == yaml.MappingNode {
			return []*yaml.Node{v.Alias}
		}
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			if c.Kind != yaml.SequenceNode { // nested sequences are no merge
				out = append(out, mergeSources(c)...)
			}
		}
		return out
	}
	return nil
}

// unknownKeyMsg names the keys the section accepts and the likeliest one meant.
func unknownKeyMsg(key string, section path, fields []yamlField) string {
	names := make([]string, len(fields))
	best, bestDist := "", 3 // suggest only keys at most 2 edits away
	for i, f := range fields {
		names[i] = f.name
		if d := editDistance(key, f.name); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	where := "at the top level"
	if len(section) > 0 {
		where = "in " + section.String()
	}
	msg := "unknown key " + strconv.Quote(textclip.Value(key))
	if key == "" {
		msg, best = "unknown key, not shown (it is no key name: a value written as a key?)", ""
	}
	if best != "" {
		msg += "; did you mean " + strconv.Quote(best) + "?"
	}
	return msg + " (keys " + where + ": " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance of two short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// elemRef is the path element of item i of the sequence at p: a siteRef under
// sites (so paths name the site), the index elsewhere.
func elemRef(p path, i int, item *yaml.Node) any {
	if len(p) != 1 || p[0] != "sites" {
		return i
	}
	label := "#" + strconv.Itoa(i)
	if item.Kind == yaml.MappingNode {
		for k := 0; k+1 < len(item.Content); k += 2 {
			if item.Content[k].Value == "id" && events.ValidateSite(item.Content[k+1].Value) == nil {
				label = item.Content[k+1].Value
			}
		}
	}
	return siteRef{index: i, label: label}
}

// pathAtLine finds the value an error reported by line is about: the node at
// line:column when the column is known, else the deepest value on the line,
// preferring one whose text matches value (the decoder may have cut it short,
// "fivetho..."). It returns the path and the node, or nil when nothing is on
// the line.
func pathAtLine(root *yaml.Node, line, column int, value string) (path, *yaml.Node) {
	if line == 0 {
		return nil, nil
	}
	var (
		best      path
		bestNode  *yaml.Node
		bestScore int
	)
	prefix := strings.TrimSuffix(value, "...")
	consider := func(p path, n *yaml.Node) {
		score := 1
		switch {
		case column != 0 && n.Column == column:
			score = 3
		case value != "" && (n.Value == value || (prefix != value && strings.HasPrefix(n.Value, prefix))):
			score = 2
		}
		if score >= bestScore {
			best, bestNode, bestScore = p, n, score
		}
	}
	var walk func(n *yaml.Node, p path)
	walk = func(n *yaml.Node, p path) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				kp := p.with(k.Value)
				if val.Line == line || k.Line == line {
					consider(kp, val)
				}
				walk(val, kp)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				ep := p.with(elemRef(p, i, c))
				if c.Line == line {
					consider(ep, c)
				}
				walk(c, ep)
			}
		}
	}
	walk(root, nil)
	return best, bestNode
}

// locate sets the line of every problem that has a path but no line yet, from a
// parse of data into a node tree (done once, and only when needed).
func locate(data []byte, probs []Problem) {
	var root *yaml.Node
	for i := range probs {
		p := &probs[i]
		if p.Line != 0 || p.at == nil {
			continue
		}
		if root == nil {
			root = &yaml.Node{}
			if yaml.Unmarshal(data, root) != nil {
				return
			}
		}
		p.Line = lineOf(root, p.at)
	}
}

// lineOf returns the line of the value at p, or of its nearest ancestor in the
// file when the value itself is not written (a missing required key).
func lineOf(root *yaml.Node, p path) int {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range p {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch e := e.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == e {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int, siteRef:
			idx, ok := e.(int)
			if !ok {
				idx = e.(siteRef).index
			}
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
