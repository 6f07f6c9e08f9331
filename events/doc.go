// Package events is pbxfleet's wire contract: the names of every subject, key,
// bucket, stream and service (names.go), the three payload types that cross the
// wire (Desired, Result, Status), how each becomes a CloudEvents 1.0 event, and
// the strict decoder every reader uses. The JSON Schemas of the payloads are
// embedded (Schema) and kept in step with the Go types by the tests.
//
// Every event is written in structured mode (application/cloudevents+json) with
// Nats-Msg-Id set to the event id (PublishHeader), so a resend deduplicates.
// Decode also accepts binary mode (ce- headers, the body is the data), so events
// published by hand with the nats CLI are read the same way.
//
// The package validates shapes only: that a node id is well formed, a revision is
// set, an enum has a known value. Whether a value is safe to write into an Asterisk
// file is internal/asterisk's job. It imports nothing of pbxfleet and has no clock:
// the same payload always encodes to the same bytes.
package events
