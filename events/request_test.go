package events

import "testing"

func TestFromJetStream(t *testing.T) {
	tests := []struct {
		name   string
		reply  string
		header map[string][]string
		want   bool
	}{
		{"a client's request", "_INBOX.abc.1", nil, false},
		{"a client's request with its own header", "_INBOX.abc.1", map[string][]string{"X-Trace": {"1"}}, false},
		{"a push consumer's delivery", "$JS.ACK.KV_pbxfleet_desired.evil.1.5.5.1700000000.0", nil, true},
		{"flow control", "$JS.FC.KV_pbxfleet_desired.evil.x", nil, true},
		{"headers_only, no reply", "", map[string][]string{"Nats-Msg-Size": {"12"}}, true},
		{"republished", "", map[string][]string{"Nats-Stream": {"KV_pbxfleet_desired"}, "Nats-Sequence": {"5"}}, true},
		{"lower case", "", map[string][]string{"nats-stream": {"X"}}, true},
		{"no reply, no header", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromJetStream(tt.reply, tt.header); got != tt.want {
				t.Errorf("FromJetStream(%q, %v) = %v, want %v", tt.reply, tt.header, got, tt.want)
			}
		})
	}
}
