// Package strictjson decodes one JSON document strictly: a field the target
// does not have, or anything after the document, is an error. pbxfleet reads
// what other processes (and, on a bus, anyone allowed to publish) wrote, and a
// field it would silently drop is a field someone meant it to act on.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData means something follows the JSON document.
var ErrTrailingData = errors.New("trailing data after the JSON value")

// Unmarshal decodes b into v strictly.
func Unmarshal(b []byte, v any) error { return Decode(bytes.NewReader(b), v) }

// Decode decodes the one JSON document r holds into v strictly.
func Decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}
