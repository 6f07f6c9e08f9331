package events

import "errors"

// Errors returned by this package, always wrapped with the reason, the field and
// the node when known; match them with errors.Is.
var (
	// ErrTooLarge means an event is larger than MaxEventBytes.
	ErrTooLarge = errors.New("event too large")
	// ErrMalformed means the bytes are not a well-formed event or payload: bad
	// JSON, an unknown or missing JSON field, a null, a wrong content type.
	ErrMalformed = errors.New("malformed event")
	// ErrMissingAttribute means a required CloudEvents attribute (specversion, id,
	// source, type, subject) is absent or empty.
	ErrMissingAttribute = errors.New("missing cloudevents attribute")
	// ErrUnsupportedSpecVersion means the event's specversion is not SpecVersion.
	ErrUnsupportedSpecVersion = errors.New("unsupported cloudevents specversion")
	// ErrUnknownType means the event type is not one of EventTypes.
	ErrUnknownType = errors.New("unknown event type")
	// ErrUnexpectedType means a known event type arrived where another was expected
	// (e.g. a status event in the desired bucket).
	ErrUnexpectedType = errors.New("unexpected event type")
	// ErrSubjectMismatch means two names of one node disagree: the NATS subject or
	// KV key, the event's subject attribute, the payload's node, the trunk's site.
	ErrSubjectMismatch = errors.New("subject and payload disagree")
	// ErrInvalidSite means a site name is not 1 to 63 characters of [a-z0-9_-].
	ErrInvalidSite = errors.New("invalid site")
	// ErrInvalidRole means a role is not pbx or oml.
	ErrInvalidRole = errors.New("invalid role")
	// ErrInvalidNode means a node id is not <site>.<role>.
	ErrInvalidNode = errors.New("invalid node id")
	// ErrInvalidSubject means a NATS subject is not where pbxfleet expects it.
	ErrInvalidSubject = errors.New("invalid subject")
	// ErrInvalidRevision means a payload names revision 0 where a revision is required.
	ErrInvalidRevision = errors.New("invalid revision")
	// ErrInvalidField means a payload field has a value outside its shape: an
	// unknown enum value, a port out of range, a required string left empty.
	ErrInvalidField = errors.New("invalid field")
	// ErrInvalidSource means an event source is not pbxfleet/<component>.
	ErrInvalidSource = errors.New("invalid event source")
)
