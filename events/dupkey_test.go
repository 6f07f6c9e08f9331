package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// duplicateKeyByTokens is the plain, slow reading of the rule duplicateKey
// implements: encoding/json's own tokens, a set of keys per object. The fuzz
// target below holds the two to the same answers.
func duplicateKeyByTokens(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys      map[string]bool
		object    bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if k, ok := tok.(string); ok {
				if stack[n-1].keys[k] {
					return k, true
				}
				stack[n-1].keys[k], stack[n-1].expectKey = true, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, object: true, expectKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	many := func(n int, dup bool) string { // an object of n keys, the last one again when dup
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			b.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
		}
		if dup {
			b.WriteString(`"k":2,`)
		}
		b.WriteString(`"end":0}`)
		return b.String()
	}
	tests := []struct {
		name string
		json string
		want string // "" for none
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{"top level", `{"a":1,"a":2}`, "a"},
		{"deep", `{"a":{"b":[{"c":1,"c":2}]}}`, "c"},
		{"a value equal to a key is no key", `{"a":"a","b":"a"}`, ""},
		{"same key in sibling objects", `[{"a":1},{"a":1}]`, ""},
		{"an escape resolved", `{"a":1,"\u0061":2}`, "a"},
		{"a quote inside a key", `{"a\"b":1,"a\"b":2}`, `a"b`},
		{"a backslash ends a key", `{"a\\":1,"a\\":2}`, `a\`},
		{"bytes that are not UTF-8 read as U+FFFD", "{\"\xff\":1,\"\xfe\":2}", "\ufffd"},
		{"keys after a nested object", `{"a":{"x":1},"b":2,"a":3}`, "a"},
		{"many keys, no duplicate", many(100, false), ""},
		{"many keys, a duplicate past the map threshold", many(100, true), "k"},
		{"whitespace around", " { \"a\" : 1 ,\n\t\"a\" : 2 } ", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := duplicateKey([]byte(tt.json))
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, got)
			ref, refOK := duplicateKeyByTokens([]byte(tt.json))
			assert.Equal(t, refOK, ok, "the token reading agrees")
			assert.Equal(t, ref, got, "the token reading agrees")
		})
	}
}

// FuzzDuplicateKey: on every valid JSON text, the one-pass scan finds the
// same duplicate (or none) as encoding/json's tokens do.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":1},"b":2}`, `[{"a":1},{"a":1}]`, `{"\u0061":1,"a":2}`, `"x"`, `{"a":[1,{"a":2}],"b":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		got, ok := duplicateKey(data)
		ref, refOK := duplicateKeyByTokens(data)
		if ok != refOK || got != ref {
			t.Fatalf("%q: scan says %q %v, tokens say %q %v", data, got, ok, ref, refOK)
		}
	})
}

func BenchmarkDuplicateKey(b *testing.B) {
	data, _, err := Encode(SourceOrchestrator, sampleDesired())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			duplicateKey(data)
		}
	})
	b.Run("tokens", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			duplicateKeyByTokens(data)
		}
	})
}
