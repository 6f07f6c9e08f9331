package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxIncludeDepth bounds #include nesting; a deeper chain is an include loop.
const maxIncludeDepth = 10

// Conf is one Asterisk configuration file as Asterisk's config parser (main/config.c)
// reads it: the file itself plus everything it #includes, in order.
type Conf struct {
	// Name is the top-level file name, relative to the config directory.
	Name string
	// Sections holds every category in order of appearance. A category declared
	// twice appears twice (Asterisk keeps both; consumers decide: the dialplan merges
	// contexts, chan_sip lets the later peer win); "(+)" appends to the earlier one.
	Sections []*Section
	// Warnings are the lines Asterisk would log and skip (e.g. no '=' sign).
	Warnings []string
}

// Section is one [category] of a .conf file.
type Section struct {
	Name string
	// Template is true for "[name](!)": usable by inheritance only.
	Template bool
	// Inherits lists the templates/categories named in "(a,b)", in order; their
	// variables were copied in front of the section's own.
	Inherits []string
	// File and Line locate the header.
	File string
	Line int
	Vars []Var
}

// Var is one "name = value" or "name => value" line.
type Var struct {
	Name  string
	Value string
	// Object is true for "=>".
	Object bool
	// File is the file the line is in, as named in the #include that read it (the
	// top-level file by its own name); Line is 1-based. `dialplan show` prints both.
	File string
	Line int
}

// Get returns the value of the last variable called name (case-insensitive, as
// Asterisk's option lookups are) and whether there was one.
func (s *Section) Get(name string) (string, bool) {
	for i := len(s.Vars) - 1; i >= 0; i-- {
		if strings.EqualFold(s.Vars[i].Name, name) {
			return s.Vars[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of the last variable called name, or def.
func (s *Section) Value(name, def string) string {
	if v, ok := s.Get(name); ok {
		return v
	}
	return def
}

// Find returns every non-template occurrence of the category called name.
func (c *Conf) Find(name string) []*Section {
	var out []*Section
	for _, s := range c.Sections {
		if s.Name == name && !s.Template {
			out = append(out, s)
		}
	}
	return out
}

// ReadConf reads dir/name the way Asterisk does and returns its categories. It fails
// (wrapping ErrConfSyntax, ErrIncludeMissing or ErrIncludeDepth) where Asterisk would
// reject the whole file; the caller then keeps its previous configuration.
func ReadConf(dir, name string) (*Conf, error) {
	r := &confReader{dir: dir, conf: &Conf{Name: name}}
	if err := r.readFile(name, name, 0, false); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, name), err)
	}
	return r.conf, nil
}

type confReader struct {
	dir  string
	conf *Conf
	cur  *Section
}

// readFile parses one file; label is the name recorded on its variables.
func (r *confReader) readFile(name, label string, depth int, try bool) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%w: %s", ErrIncludeDepth, name)
	}
	path := name
	if !filepath.IsAbs(path) {
		// Asterisk resolves relative includes against the config directory, not
		// against the including file's directory.
		path = filepath.Join(r.dir, name)
	}
	paths, err := filepath.Glob(path)
	if err != nil || len(paths) == 0 {
		paths = []string{path}
	}
	found := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return fmt.Errorf("read %s: %w", p, err)
		}
		found++
		if err := r.parse(data, label, depth); err != nil {
			return err
		}
	}
	if found == 0 && !try {
		return fmt.Errorf("%w: %s", ErrIncludeMissing, name)
	}
	return nil
}

// parse runs Asterisk's line processing: comments first (";", "\;" escapes,
// ";-- --;" block comments that may nest and span lines), then the remaining text.
func (r *confReader) parse(data []byte, file string, depth int) error {
	nest := 0
	lineno := 0
	for len(data) > 0 {
		lineno++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		line := strings.TrimRight(string(raw), "\r")
		text, n := stripComments(line, nest)
		nest = n
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if err := r.line(text, file, lineno, depth); err != nil {
			return err
		}
	}
	return nil
}

// stripComments removes comments from one line given the block-comment nesting at
// its start, and returns the text to process and the nesting at its end.
func stripComments(line string, nest int) (string, int) {
	var out strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != ';' {
			if nest == 0 {
				out.WriteByte(c)
			}
			continue
		}
		switch {
		case i > 0 && line[i-1] == '\\' && nest == 0:
			// "\;" is a literal semicolon: drop the backslash already written.
			s := out.String()
			out.Reset()
			out.WriteString(s[:len(s)-1])
			out.WriteByte(';')
		case strings.HasPrefix(line[i:], ";--") && !strings.HasPrefix(line[i:], ";---"):
			nest++
			i += 2
		case nest > 0 && i >= 2 && line[i-1] == '-' && line[i-2] == '-':
			nest--
		case nest == 0:
			// A plain ';' ends all processing of the line.
			return out.String(), nest
		}
	}
	return out.String(), nest
}

func (r *confReader) line(text, file string, lineno, depth int) error {
	switch {
	case text[0] == '[':
		return r.header(text, file, lineno)
	case text[0] == '#':
		return r.directive(text, file, lineno, depth)
	}
	if r.cur == nil {
		return fmt.Errorf("%w: no category context for line %d of %s", ErrConfSyntax, lineno, file)
	}
	escaped := text[0] == '\\'
	if escaped {
		text = text[1:]
		if text == "" || text[0] < 33 {
			return fmt.Errorf("%w: invalid escape in line %d of %s", ErrConfSyntax, lineno, file)
		}
	}
	eq := strings.IndexByte(text, '=')
	if escaped && eq == 0 {
		eq = strings.IndexByte(text[1:], '=')
		if eq >= 0 {
			eq++
		}
	}
	if eq < 0 {
		r.conf.Warnings = append(r.conf.Warnings, fmt.Sprintf("No '=' (equal sign) in line %d of %s", lineno, file))
		return nil
	}
	name, value := text[:eq], text[eq+1:]
	if strings.HasSuffix(name, "+") {
		// "name += value" appends to the last variable of that name.
		name = strings.TrimSpace(strings.TrimSuffix(name, "+"))
		for i := len(r.cur.Vars) - 1; i >= 0; i-- {
			if r.cur.Vars[i].Name == name {
				r.cur.Vars[i].Value += strings.TrimSpace(value)
				return nil
			}
		}
	}
	obj := false
	if strings.HasPrefix(value, ">") {
		obj = true
		value = value[1:]
	}
	name = strings.TrimSpace(name)
	if name == "" {
		r.conf.Warnings = append(r.conf.Warnings, fmt.Sprintf("No variable name in line %d of %s", lineno, file))
		return nil
	}
	r.cur.Vars = append(r.cur.Vars, Var{Name: name, Value: strings.TrimSpace(value), Object: obj, File: file, Line: lineno})
	return nil
}

func (r *confReader) header(text, file string, lineno int) error {
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return fmt.Errorf("%w: no closing ']', line %d of %s", ErrConfSyntax, lineno, file)
	}
	name := strings.TrimSpace(text[1:end])
	rest := text[end+1:]
	sec := &Section{Name: name, File: file, Line: lineno}
	if !strings.HasPrefix(rest, "(") {
		r.conf.Sections = append(r.conf.Sections, sec)
		r.cur = sec
		return nil
	}
	closeIdx := strings.IndexByte(rest, ')')
	if closeIdx < 0 {
		return fmt.Errorf("%w: no closing ')', line %d of %s", ErrConfSyntax, lineno, file)
	}
	target := sec
	for _, opt := range strings.Split(rest[1:closeIdx], ",") {
		opt = strings.TrimSpace(opt)
		switch {
		case opt == "":
		case opt == "!":
			sec.Template = true
		case opt[0] == '+':
			prev := r.last(name)
			if prev == nil {
				return fmt.Errorf("%w: category addition requested, but category '%s' does not exist, line %d of %s",
					ErrConfSyntax, name, lineno, file)
			}
			target = prev
		default:
			base := r.last(opt)
			if base == nil {
				return fmt.Errorf("%w: inheritance requested, but category '%s' does not exist, line %d of %s",
					ErrConfSyntax, opt, lineno, file)
			}
			sec.Inherits = append(sec.Inherits, opt)
			sec.Vars = append(sec.Vars, base.Vars...)
		}
	}
	if target == sec {
		r.conf.Sections = append(r.conf.Sections, sec)
	}
	r.cur = target
	return nil
}

// last returns the most recent category (template or not) called name.
func (r *confReader) last(name string) *Section {
	for i := len(r.conf.Sections) - 1; i >= 0; i-- {
		if r.conf.Sections[i].Name == name {
			return r.conf.Sections[i]
		}
	}
	return nil
}

func (r *confReader) directive(text, file string, lineno, depth int) error {
	word, arg := text[1:], ""
	if i := strings.IndexAny(word, " \t"); i >= 0 {
		word, arg = word[:i], word[i+1:]
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && (arg[0] == '"' && arg[len(arg)-1] == '"' || arg[0] == '<' && arg[len(arg)-1] == '>') {
		arg = arg[1 : len(arg)-1]
	}
	switch strings.ToLower(word) {
	case "include", "tryinclude":
		if arg == "" {
			return fmt.Errorf("%w: directive '#%s' needs an argument (filename) at line %d of %s",
				ErrConfSyntax, word, lineno, file)
		}
		try := strings.EqualFold(word, "tryinclude")
		if err := r.readFile(arg, arg, depth+1, try); err != nil {
			return fmt.Errorf("#%s %s at line %d of %s: %w", word, arg, lineno, file, err)
		}
		return nil
	case "exec":
		// execincludes=no is the default: Asterisk ignores #exec with a warning.
		r.conf.Warnings = append(r.conf.Warnings, fmt.Sprintf("#exec ignored at line %d of %s (execincludes off)", lineno, file))
		return nil
	}
	return fmt.Errorf("%w: unknown directive '#%s' at line %d of %s", ErrConfSyntax, word, lineno, file)
}
