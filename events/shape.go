package events

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// jsonField is one struct field as encoding/json sees it.
type jsonField struct {
	name      string
	omitEmpty bool
	typ       reflect.Type
}

// fieldOf returns f as encoding/json sees it; ok is false for a field it
// skips (unexported, or tagged "-"). It allocates nothing: it runs for every
// field of every message a node or the orchestrator reads.
func fieldOf(f reflect.StructField) (jsonField, bool) {
	if !f.IsExported() {
		return jsonField{}, false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return jsonField{}, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	omit := false
	for opts != "" {
		var opt string
		opt, opts, _ = strings.Cut(opts, ",")
		omit = omit || opt == "omitempty"
	}
	return jsonField{name: name, omitEmpty: omit, typ: f.Type}, true
}

// hasField reports whether the struct type t has a JSON field named name.
func hasField(t reflect.Type, name string) bool {
	for i := range t.NumField() {
		if f, ok := fieldOf(t.Field(i)); ok && f.name == name {
			return true
		}
	}
	return false
}

func typeOf(v any) reflect.Type {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// shapePath is where checkShape is, kept as a stack and written out only for
// an error.
type shapePath []shapeStep

// shapeStep is a field or map key (name), or an array item (index, name "").
type shapeStep struct {
	name  string
	index int
}

func (p shapePath) String() string {
	var b strings.Builder
	for _, s := range p {
		if s.name == "" {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
	}
	return b.String()
}

// checkShape walks decoded JSON (tree) along the Go type t and returns an error
// wrapping ErrMalformed for a null, for a field without omitempty that is
// missing, or for a key that is no field (a key that matches one only
// case-insensitively included, which encoding/json would otherwise accept).
// The Go encoder never writes null here: every slice, map and pointer field is
// omitempty and required ones are validated non-empty.
func checkShape(tree any, t reflect.Type, root string) error {
	p := shapePath{{name: root}}
	return walkShape(tree, t, &p)
}

func walkShape(tree any, t reflect.Type, p *shapePath) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tree == nil {
		return fmt.Errorf("%w: %s is null", ErrMalformed, p)
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return nil
	case t.Kind() == reflect.Struct:
		obj, ok := tree.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an object", ErrMalformed, p)
		}
		present := 0
		for i := range t.NumField() {
			f, ok := fieldOf(t.Field(i))
			if !ok {
				continue
			}
			v, ok := obj[f.name]
			if !ok {
				if !f.omitEmpty {
					return fmt.Errorf("%w: %s.%s is missing", ErrMalformed, p, f.name)
				}
				continue
			}
			present++
			*p = append(*p, shapeStep{name: f.name})
			err := walkShape(v, f.typ, p)
			*p = (*p)[:len(*p)-1]
			if err != nil {
				return err
			}
		}
		if present < len(obj) {
			// Name the first unknown key in sorted order, so the error is the
			// same whatever order the map iterates in.
			unknown, found := "", false
			for k := range obj {
				if !hasField(t, k) && (!found || k < unknown) {
					unknown, found = k, true
				}
			}
			return fmt.Errorf("%w: %s: unknown field %q", ErrMalformed, p, textclip.Value(unknown))
		}
	case t.Kind() == reflect.Slice:
		arr, ok := tree.([]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an array", ErrMalformed, p)
		}
		for i, v := range arr {
			*p = append(*p, shapeStep{index: i})
			err := walkShape(v, t.Elem(), p)
			*p = (*p)[:len(*p)-1]
			if err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map:
		obj, ok := tree.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an object", ErrMalformed, p)
		}
		// The first failing key in sorted order, as above.
		var first error
		firstKey := ""
		for k, v := range obj {
			if first != nil && k > firstKey {
				continue
			}
			*p = append(*p, shapeStep{name: textclip.Value(k)})
			err := walkShape(v, t.Elem(), p)
			*p = (*p)[:len(*p)-1]
			if err != nil {
				first, firstKey = err, k
			}
		}
		return first
	}
	return nil
}
