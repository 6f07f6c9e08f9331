package events

import "strings"

// jsDeliveryHeaders are the headers the server adds to what JetStream delivers
// or republishes (a push consumer's headers_only delivery, a stream's
// republish, a direct get's answer); a client's request carries none of them.
var jsDeliveryHeaders = []string{
	"Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp",
	"Nats-Last-Sequence", "Nats-Msg-Size", "Nats-Num-Pending",
}

// FromJetStream reports whether a request was published by JetStream rather
// than by a client: its reply subject is a JetStream acknowledgement
// ($JS.ACK.…, every push consumer's delivery) or it carries a header JetStream
// adds (Nats-Stream, Nats-Sequence, …; header names compared without regard to
// case). Anyone allowed to create a consumer or a republish chooses where such
// messages go, so the pbxfleet services refuse them whatever their body: a
// verb is acted on only when a client sent it.
func FromJetStream(reply string, header map[string][]string) bool {
	if strings.HasPrefix(reply, "$JS.ACK.") || strings.HasPrefix(reply, "$JS.FC.") {
		return true
	}
	for k := range header {
		for _, h := range jsDeliveryHeaders {
			if strings.EqualFold(k, h) {
				return true
			}
		}
	}
	return false
}
