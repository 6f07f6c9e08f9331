package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// Mode is how an event was carried.
type Mode string

// The two CloudEvents modes Decode accepts.
const (
	// ModeStructured is the whole event as JSON in the body
	// (application/cloudevents+json); pbxfleet always writes this.
	ModeStructured Mode = "structured"
	// ModeBinary is the attributes in ce- headers and the data in the body.
	ModeBinary Mode = "binary"
)

// Envelope is a decoded, validated event.
type Envelope struct {
	// Event is the CloudEvent as read (attributes and raw data).
	Event cloudevents.Event
	// Mode is how the event was carried.
	Mode Mode
	// Payload is the decoded data: a Desired, Result or Status, already validated,
	// whose node equals the event's subject attribute.
	Payload Payload
}

// Decode reads one event from a NATS message body and its headers (a nats.Header
// converts directly), in structured mode (Content-Type
// application/cloudevents+json, or a JSON body with specversion) or binary mode
// (ce- headers, the body is the data). It checks that the event is at most
// MaxEventBytes, is CloudEvents 1.0 with id, source, type and subject, has a known
// type, carries JSON data without unknown, missing or null fields, that the
// payload is valid, and that the payload's node equals the subject attribute.
// On failure it returns an error wrapping one of ErrTooLarge, ErrMalformed,
// ErrMissingAttribute, ErrUnsupportedSpecVersion, ErrUnknownType,
// ErrSubjectMismatch, or the payload's validation errors (ErrInvalidNode,
// ErrInvalidRevision, ErrInvalidField).
func Decode(data []byte, header map[string][]string) (Envelope, error) {
	env, err := decode(data, header)
	if err != nil {
		return Envelope{}, fmt.Errorf("decode event: %w", err)
	}
	return env, nil
}

// DecodeDesired decodes the desired state stored under key (the node id) in
// BucketDesired. It returns Decode's errors, or an error wrapping ErrInvalidNode
// for a bad key, ErrUnexpectedType for another event type, or ErrSubjectMismatch
// when the event is for another node than the key.
func DecodeDesired(data []byte, header map[string][]string, key string) (Desired, error) {
	return decodeAs[Desired](data, header, key, "key "+textclip.Value(key))
}

// DecodeResult decodes a result published on subject
// (pbxfleet.result.<site>.<role>). It returns Decode's errors, or an error
// wrapping ErrInvalidSubject or ErrInvalidNode for a bad subject,
// ErrUnexpectedType for another event type, or ErrSubjectMismatch when the event
// is for another node than the subject.
func DecodeResult(data []byte, header map[string][]string, subject string) (Result, error) {
	site, role, err := ParseResultSubject(subject)
	if err != nil {
		return Result{}, fmt.Errorf("decode %s: %w", TypeResult, err)
	}
	return decodeAs[Result](data, header, NodeID(site, role), "subject "+textclip.Value(subject))
}

// DecodeStatus decodes the status stored under key (the node id) in
// BucketStatus. It returns Decode's errors, or an error wrapping ErrInvalidNode
// for a bad key, ErrUnexpectedType for another event type, or ErrSubjectMismatch
// when the event is for another node than the key.
func DecodeStatus(data []byte, header map[string][]string, key string) (Status, error) {
	return decodeAs[Status](data, header, key, "key "+textclip.Value(key))
}

func decodeAs[T Payload](data []byte, header map[string][]string, node, where string) (T, error) {
	var zero T
	if _, _, err := ParseNodeID(node); err != nil {
		return zero, fmt.Errorf("decode %s at %s: %w", zero.EventType(), where, err)
	}
	env, err := decode(data, header)
	if err != nil {
		return zero, fmt.Errorf("decode %s at %s: %w", zero.EventType(), where, err)
	}
	p, ok := env.Payload.(T)
	if !ok {
		return zero, fmt.Errorf("decode %s at %s: %w: got %s", zero.EventType(), where, ErrUnexpectedType, env.Event.Type())
	}
	if p.NodeID() != node {
		return zero, fmt.Errorf("decode %s at %s: %w: event is for node %s", zero.EventType(), where, ErrSubjectMismatch, p.NodeID())
	}
	return p, nil
}

func decode(data []byte, header map[string][]string) (Envelope, error) {
	if len(data) > MaxEventBytes {
		return Envelope{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxEventBytes)
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; a value that
	// was mangled on the way must not reach a config file as something else.
	if !utf8.Valid(data) {
		return Envelope{}, fmt.Errorf("%w: not valid UTF-8 at byte %d", ErrMalformed, firstInvalidUTF8(data))
	}
	contentType, ce, err := splitHeader(header)
	if err != nil {
		return Envelope{}, err
	}
	var mediaType string
	if contentType != "" {
		if mediaType, _, err = mime.ParseMediaType(contentType); err != nil {
			return Envelope{}, fmt.Errorf("%w: content type %q: %w", ErrMalformed, textclip.Value(contentType), err)
		}
	}
	// A structured content type wins over ce- headers (CloudEvents NATS binding);
	// a bare JSON body with specversion is structured too, as the nats CLI sends it.
	switch {
	case mediaType == ContentTypeCloudEvents:
		return decodeStructured(data)
	case len(ce) > 0:
		return decodeBinary(data, ce, contentType)
	case mediaType == "" || mediaType == ContentTypeJSON:
		return decodeStructured(data)
	}
	return Envelope{}, fmt.Errorf("%w: content type %q is not %s and there are no %s headers",
		ErrMalformed, textclip.Value(contentType), ContentTypeCloudEvents, HeaderPrefixCE)
}

// splitHeader returns the content type and the ce- attributes (lower-case names
// without the prefix). NATS header names are case-sensitive, so one attribute
// under two spellings is ambiguous and rejected, as is a repeated value.
func splitHeader(header map[string][]string) (contentType string, ce map[string]string, err error) {
	ce = make(map[string]string)
	seenContentType := false
	for name, values := range header {
		lower := strings.ToLower(name)
		attr, isCE := strings.CutPrefix(lower, HeaderPrefixCE)
		if lower != strings.ToLower(HeaderContentType) && !isCE {
			continue
		}
		if len(values) != 1 {
			return "", nil, fmt.Errorf("%w: header %q has %d values, want 1", ErrMalformed, textclip.Value(name), len(values))
		}
		if !isCE {
			if seenContentType {
				return "", nil, fmt.Errorf("%w: header %s appears twice", ErrMalformed, HeaderContentType)
			}
			seenContentType, contentType = true, values[0]
			continue
		}
		if _, dup := ce[attr]; dup {
			return "", nil, fmt.Errorf("%w: header %q appears twice", ErrMalformed, textclip.Value(name))
		}
		ce[attr] = values[0]
	}
	return contentType, ce, nil
}

// knownAttributes are the CloudEvents attributes pbxfleet reads (the ones it
// writes, the optional ones of the spec it accepts, and the distributed
// tracing extension); any other is refused, in a structured body or as a ce-
// header: nothing unread may ride along.
func knownAttribute(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
		"traceparent", "tracestate":
		return true
	}
	return false
}

func decodeStructured(data []byte) (Envelope, error) {
	// encoding/json keeps the last of two equal keys: the first "secret" a
	// reviewer reads would not be the one applied.
	if err := noDuplicateKeys(data); err != nil {
		return Envelope{}, fmt.Errorf("%w: structured event: %w", ErrMalformed, err)
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(data, &attrs); err != nil {
		return Envelope{}, fmt.Errorf("%w: structured event: %w", ErrMalformed, err)
	}
	if attrs == nil {
		return Envelope{}, fmt.Errorf("%w: structured event is null", ErrMalformed)
	}
	for name := range attrs {
		if name != "data" && !knownAttribute(name) {
			return Envelope{}, fmt.Errorf("%w: structured event: unknown attribute %q", ErrMalformed, textclip.Value(name))
		}
	}
	str := func(name string) (string, error) {
		raw, ok := attrs[name]
		if !ok {
			return "", nil
		}
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: attribute %s is not a string", ErrMalformed, name)
		}
		if s == nil {
			return "", nil
		}
		return *s, nil
	}
	var vals [5]string
	for i, name := range []string{"specversion", "id", "source", "type", "subject"} {
		v, err := str(name)
		if err != nil {
			return Envelope{}, err
		}
		vals[i] = v
	}
	if err := checkAttributes(vals[0], vals[1], vals[2], vals[3], vals[4]); err != nil {
		return Envelope{}, err
	}
	var e cloudevents.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s %s: %w", ErrMalformed, vals[3], textclip.Value(vals[4]), err)
	}
	return finish(e, ModeStructured)
}

func decodeBinary(data []byte, ce map[string]string, contentType string) (Envelope, error) {
	size := len(data) + len(contentType)
	for name, v := range ce {
		size += len(HeaderPrefixCE) + len(name) + len(v)
	}
	if size > MaxEventBytes {
		return Envelope{}, fmt.Errorf("%w: %d bytes of data and headers, limit %d", ErrTooLarge, size, MaxEventBytes)
	}
	if err := checkAttributes(ce["specversion"], ce["id"], ce["source"], ce["type"], ce["subject"]); err != nil {
		return Envelope{}, err
	}
	for name := range ce {
		if !knownAttribute(name) && name != "datacontenttype" {
			return Envelope{}, fmt.Errorf("%w: unknown attribute header %q", ErrMalformed, textclip.Value(HeaderPrefixCE+name))
		}
	}
	if err := noDuplicateKeys(data); err != nil {
		return Envelope{}, fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	e := cloudevents.New(SpecVersion)
	for name, v := range ce {
		switch name {
		case "specversion":
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Envelope{}, fmt.Errorf("%w: header %stime: %w", ErrMalformed, HeaderPrefixCE, err)
			}
			e.SetTime(t)
		case "dataschema":
			e.SetDataSchema(v)
		case "datacontenttype":
			return Envelope{}, fmt.Errorf("%w: binary mode carries datacontenttype in %s, not %sdatacontenttype",
				ErrMalformed, HeaderContentType, HeaderPrefixCE)
		default:
			e.SetExtension(name, v) // a bad name is recorded and reported by Validate
		}
	}
	if contentType != "" {
		e.SetDataContentType(contentType)
	}
	e.DataEncoded = bytes.Clone(data)
	return finish(e, ModeBinary)
}

// checkAttributes checks the attributes pbxfleet requires, in the order that
// gives the most useful error.
func checkAttributes(specversion, id, source, typ, subject string) error {
	if strings.TrimSpace(specversion) == "" {
		return fmt.Errorf("%w: specversion", ErrMissingAttribute)
	}
	if specversion != SpecVersion {
		return fmt.Errorf("%w: %q, want %s", ErrUnsupportedSpecVersion, textclip.Value(specversion), SpecVersion)
	}
	var missing []string
	for _, a := range []struct{ name, v string }{{"id", id}, {"source", source}, {"type", typ}, {"subject", subject}} {
		if strings.TrimSpace(a.v) == "" {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingAttribute, strings.Join(missing, ", "))
	}
	switch typ {
	case TypeDesired, TypeResult, TypeStatus:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownType, textclip.Value(typ))
}

// finish validates the event read in either mode and decodes its data.
func finish(e cloudevents.Event, mode Mode) (Envelope, error) {
	// The SDK may read an attribute differently from the pre-check (duplicate
	// keys): check again what it actually holds.
	if err := checkAttributes(e.SpecVersion(), e.ID(), e.Source(), e.Type(), e.Subject()); err != nil {
		return Envelope{}, err
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s %s: %s", ErrMalformed, e.Type(), textclip.Value(e.Subject()),
			strings.TrimSpace(err.Error()))
	}
	if dct := e.DataContentType(); dct != "" {
		mt, _, err := mime.ParseMediaType(dct)
		if err != nil || mt != ContentTypeJSON {
			return Envelope{}, fmt.Errorf("%w: %s %s: datacontenttype %q, want %s",
				ErrMalformed, e.Type(), textclip.Value(e.Subject()), textclip.Value(dct), ContentTypeJSON)
		}
	}
	data := e.Data()
	if len(data) == 0 {
		return Envelope{}, fmt.Errorf("%w: %s %s: no data", ErrMalformed, e.Type(), textclip.Value(e.Subject()))
	}
	var (
		p   Payload
		err error
	)
	switch e.Type() {
	case TypeDesired:
		var d Desired
		err = decodeData(data, &d)
		p = d
	case TypeResult:
		var r Result
		err = decodeData(data, &r)
		p = r
	default: // TypeStatus; checkAttributes let no other type through
		var s Status
		err = decodeData(data, &s)
		p = s
	}
	if err != nil {
		return Envelope{}, fmt.Errorf("%s %s: %w", e.Type(), textclip.Value(e.Subject()), err)
	}
	if err := p.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%s %s: %w", e.Type(), textclip.Value(e.Subject()), err)
	}
	if p.NodeID() != e.Subject() {
		return Envelope{}, fmt.Errorf("%s: %w: subject %q, payload node %q",
			e.Type(), ErrSubjectMismatch, textclip.Value(e.Subject()), p.NodeID())
	}
	return Envelope{Event: e, Mode: mode, Payload: p}, nil
}

// decodeData decodes JSON data into v strictly: no unknown fields, no trailing
// data, and every field without omitempty present and not null. The tree
// decode refuses trailing data and checkShape the rest, so the typed decode
// needs no strictness of its own.
func decodeData(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	// A desired state's text ends up in Asterisk's files: U+FFFD there (a lone
	// surrogate escape like \ud800 decodes to it) means the sender's text was
	// broken. Results and statuses may carry U+FFFD legitimately: they quote
	// Asterisk's output, which can be Latin-1 and is made valid UTF-8 by json.
	if _, desired := v.(*Desired); !desired {
		return checkShape(tree, typeOf(v), "data")
	}
	if path := replacementChar(tree, "data"); path != "" {
		return fmt.Errorf("%w: %s: holds U+FFFD (an invalid \\u escape or a mangled character)", ErrMalformed, path)
	}
	return checkShape(tree, typeOf(v), "data")
}

// firstInvalidUTF8 returns the offset of the first byte of b that is not valid UTF-8.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// replacementChar returns the path of the first string (or object key) in a
// decoded JSON tree holding U+FFFD, "" when there is none.
func replacementChar(tree any, path string) string {
	switch v := tree.(type) {
	case string:
		if strings.ContainsRune(v, utf8.RuneError) {
			return path
		}
	case []any:
		for i, e := range v {
			if p := replacementChar(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, utf8.RuneError) {
				return path + "." + textclip.Value(k)
			}
			if p := replacementChar(e, path+"."+k); p != "" {
				return p
			}
		}
	}
	return ""
}

// noDuplicateKeys returns an error naming the first object key that appears
// twice in one object of the JSON text data (at any depth), nil when there is
// none or data is not JSON (the decoder says why then).
func noDuplicateKeys(data []byte) error {
	if k, ok := duplicateKey(data); ok {
		return fmt.Errorf("key %q appears twice in one object", textclip.Value(k))
	}
	return nil
}

// duplicateKey scans data once, without building tokens (a decoder's Token
// allocates for each, which made this check most of what decoding an event
// cost), and returns the first key that appears twice in one object. Keys are
// compared as encoding/json would read them: escapes resolved and bytes that
// are not UTF-8 replaced. On text that is not JSON its answer means nothing.
func duplicateKey(data []byte) (string, bool) {
	// Past this many keys an object's keys go into a map: a hostile object of
	// many thousand keys must not cost a comparison of each with each.
	const linearKeys = 16
	type object struct {
		first int                 // where its keys start in keys
		seen  map[string]struct{} // set once it holds more than linearKeys
	}
	var (
		objects   []object // open containers; arrays hold first == -1
		keys      [][]byte // the keys of every open object, innermost last
		expectKey bool
	)
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			end, plain := i+1, true
			for end < len(data) && data[end] != '"' {
				if data[end] == '\\' {
					plain = false
					end++
				}
				end++
			}
			if end >= len(data) {
				return "", false
			}
			if expectKey && len(objects) > 0 && objects[len(objects)-1].first >= 0 {
				key := data[i+1 : end]
				if !plain || !utf8.Valid(key) {
					var s string
					if json.Unmarshal(data[i:end+1], &s) != nil {
						return "", false
					}
					key = []byte(s)
				}
				o := &objects[len(objects)-1]
				if o.seen != nil {
					if _, dup := o.seen[string(key)]; dup {
						return string(key), true
					}
					o.seen[string(key)] = struct{}{}
				} else {
					for _, k := range keys[o.first:] {
						if bytes.Equal(k, key) {
							return string(key), true
						}
					}
					keys = append(keys, key)
					if len(keys)-o.first > linearKeys {
						o.seen = make(map[string]struct{}, 2*linearKeys)
						for _, k := range keys[o.first:] {
							o.seen[string(k)] = struct{}{}
						}
					}
				}
				expectKey = false
			}
			i = end
		case '{':
			objects = append(objects, object{first: len(keys)})
			expectKey = true
		case '[':
			objects = append(objects, object{first: -1})
			expectKey = false
		case '}', ']':
			if len(objects) == 0 {
				return "", false
			}
			if o := objects[len(objects)-1]; o.first >= 0 {
				keys = keys[:o.first]
			}
			objects = objects[:len(objects)-1]
			expectKey = false
		case ',':
			expectKey = len(objects) > 0 && objects[len(objects)-1].first >= 0
		}
	}
	return "", false
}
