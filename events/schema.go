package events

import (
	"embed"
	"fmt"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// schemas holds the JSON Schemas (draft 2020-12) of the payloads, one file per
// event type: schema/desired.v1.json, result.v1.json, status.v1.json.
//
//go:embed schema/*.json
var schemas embed.FS

// Schema returns the JSON Schema (draft 2020-12) of the data of an event type,
// e.g. Schema(TypeDesired). It returns an error wrapping ErrUnknownType for a
// type that is not one of EventTypes.
func Schema(eventType string) ([]byte, error) {
	var file string
	switch eventType {
	case TypeDesired:
		file = "schema/desired.v1.json"
	case TypeResult:
		file = "schema/result.v1.json"
	case TypeStatus:
		file = "schema/status.v1.json"
	default:
		return nil, fmt.Errorf("schema: %w: %q", ErrUnknownType, textclip.Value(eventType))
	}
	b, err := schemas.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", eventType, err)
	}
	return b, nil
}
