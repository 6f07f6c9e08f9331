package events

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// Payload is the data of a pbxfleet event: Desired, Result or Status. Each knows
// its event type, its node (the event subject) and its event id.
type Payload interface {
	// EventType returns the CloudEvents type, e.g. TypeDesired.
	EventType() string
	// NodeID returns the node id the event is about, the subject attribute.
	NodeID() string
	// EventID returns the event id, also the Nats-Msg-Id of the publish.
	EventID() string
	// Validate returns nil when the payload is well formed, every problem otherwise.
	Validate() error

	// eventTime returns the time attribute (zero: none).
	eventTime() time.Time
}

// Compile-time proof that the three payloads are Payloads.
var (
	_ Payload = Desired{}
	_ Payload = Result{}
	_ Payload = Status{}
)

// A desired state has no clock of its own; its order is the revision.
func (Desired) eventTime() time.Time  { return time.Time{} }
func (r Result) eventTime() time.Time { return r.FinishedAt }
func (s Status) eventTime() time.Time { return s.At }

// NewEvent returns the CloudEvent for a payload: id p.EventID(), type
// p.EventType(), subject p.NodeID(), datacontenttype application/json, time from
// the payload (none for Desired). It returns an error wrapping ErrInvalidSource
// for a source that is not pbxfleet/<component>, or the payload's validation
// error (ErrInvalidField, ...), and never an event that fails Validate.
func NewEvent(source string, p Payload) (cloudevents.Event, error) {
	if p == nil {
		return cloudevents.Event{}, fmt.Errorf("new event: %w: no payload", ErrMalformed)
	}
	if err := validateSource(source); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event: %w", p.EventType(), err)
	}
	if err := p.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event for %s: %w", p.EventType(), textclip.Value(p.NodeID()), err)
	}
	e := cloudevents.New(SpecVersion)
	e.SetID(p.EventID())
	e.SetSource(source)
	e.SetType(p.EventType())
	e.SetSubject(p.NodeID())
	if t := p.eventTime(); !t.IsZero() {
		e.SetTime(t)
	}
	if err := e.SetData(ContentTypeJSON, p); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event for %s: %w: %w", p.EventType(), p.NodeID(), ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new %s event for %s: %w: %w", p.EventType(), p.NodeID(), ErrMalformed, err)
	}
	return e, nil
}

// Encode returns the structured-mode bytes of a payload's event (publish them
// with PublishHeader(msgID)) and the event id to use as Nats-Msg-Id. It returns
// NewEvent's errors, or one wrapping ErrTooLarge when the event is larger than
// MaxEventBytes.
func Encode(source string, p Payload) (data []byte, msgID string, err error) {
	e, err := NewEvent(source, p)
	if err != nil {
		return nil, "", fmt.Errorf("encode: %w", err)
	}
	data, err = json.Marshal(e)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s for %s: %w: %w", e.Type(), e.Subject(), ErrMalformed, err)
	}
	if len(data) > MaxEventBytes {
		return nil, "", fmt.Errorf("encode %s for %s: %w: %d bytes, limit %d", e.Type(), e.Subject(), ErrTooLarge, len(data), MaxEventBytes)
	}
	return data, e.ID(), nil
}

// PublishHeader returns the NATS headers of a structured-mode publish:
// Content-Type application/cloudevents+json and Nats-Msg-Id msgID. It converts
// to nats.Header directly.
func PublishHeader(msgID string) map[string][]string {
	return map[string][]string{
		HeaderContentType: {ContentTypeCloudEvents},
		HeaderMsgID:       {msgID},
	}
}

// validateSource returns nil for pbxfleet/<component>, an error wrapping
// ErrInvalidSource otherwise.
func validateSource(source string) error {
	rest, ok := strings.CutPrefix(source, SourcePrefix)
	if !ok || rest == "" {
		return fmt.Errorf("%w: %q is not %s<component>", ErrInvalidSource, textclip.Value(source), SourcePrefix)
	}
	if strings.ContainsFunc(source, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: %q contains spaces or control characters", ErrInvalidSource, textclip.Value(source))
	}
	if _, err := url.Parse(source); err != nil {
		return fmt.Errorf("%w: %q is not a URI reference: %w", ErrInvalidSource, textclip.Value(source), err)
	}
	return nil
}
