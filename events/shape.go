package events

import (
	"fmt"
	"reflect"
	"slices"
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

// jsonFields returns the JSON fields of a struct type in declaration order.
func jsonFields(t reflect.Type) []jsonField {
	var fields []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fields = append(fields, jsonField{name: name, omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type})
	}
	return fields
}

func typeOf(v any) reflect.Type {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// checkShape walks decoded JSON (tree) along the Go type t and returns an error
// wrapping ErrMalformed for a null, for a field without omitempty that is
// missing, or for a key that matches a field only case-insensitively (which
// encoding/json would otherwise accept). The Go encoder never writes null here:
// every slice, map and pointer field is omitempty and required ones are
// validated non-empty.
func checkShape(tree any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tree == nil {
		return fmt.Errorf("%w: %s is null", ErrMalformed, path)
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return nil
	case t.Kind() == reflect.Struct:
		obj, ok := tree.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an object", ErrMalformed, path)
		}
		known := make(map[string]bool)
		for _, f := range jsonFields(t) {
			known[f.name] = true
			v, ok := obj[f.name]
			if !ok {
				if !f.omitEmpty {
					return fmt.Errorf("%w: %s.%s is missing", ErrMalformed, path, f.name)
				}
				continue
			}
			if err := checkShape(v, f.typ, path+"."+f.name); err != nil {
				return err
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !known[k] {
				return fmt.Errorf("%w: %s: unknown field %q", ErrMalformed, path, textclip.Value(k))
			}
		}
	case t.Kind() == reflect.Slice:
		arr, ok := tree.([]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an array", ErrMalformed, path)
		}
		for i, v := range arr {
			if err := checkShape(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map:
		obj, ok := tree.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an object", ErrMalformed, path)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := checkShape(obj[k], t.Elem(), path+"."+textclip.Value(k)); err != nil {
				return err
			}
		}
	}
	return nil
}
