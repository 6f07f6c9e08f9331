package strictjson

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnmarshal(t *testing.T) {
	type target struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"known fields", `{"a":1,"b":"x"}`, true},
		{"white space after", "{\"a\":1}\n  ", true},
		{"an unknown field", `{"a":1,"c":2}`, false},
		{"a second document", `{"a":1}{"a":2}`, false},
		{"garbage after", `{"a":1} x`, false},
		{"not JSON", `a=1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			err := Unmarshal([]byte(tt.in), &v)
			assert.Equal(t, tt.ok, err == nil, "%v", err)
		})
	}
}
