package events

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeProbeOrder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ProbeOrder
		err  string // "" : valid
	}{
		{name: "probe", in: `{"rollout":"r1","revision":7,"action":"probe"}`,
			want: ProbeOrder{Rollout: "r1", Revision: 7, Action: ProbeActionProbe}},
		{name: "cancel with a reason", in: `{"rollout":"r1","revision":7,"action":"cancel","reason":"far side failed"}`,
			want: ProbeOrder{Rollout: "r1", Revision: 7, Action: ProbeActionCancel, Reason: "far side failed"}},
		// What a node could make the server publish to the endpoint's subject.
		{name: "empty body", in: ``, err: "EOF"},
		{name: "a JetStream publish acknowledgement", in: `{"stream":"PBXFLEET_RESULTS","seq":12}`, err: "unknown field"},
		{name: "a JetStream API answer", in: `{"type":"io.nats.jetstream.api.v1.stream_info_response","config":{}}`, err: "unknown field"},
		{name: "an empty object", in: `{}`, err: "revision"},
		{name: "revision 0", in: `{"rollout":"r1","revision":0,"action":"probe"}`, err: "revision"},
		{name: "unknown action", in: `{"rollout":"r1","revision":1,"action":"ring"}`, err: "action"},
		{name: "two objects", in: `{"rollout":"r1","revision":1,"action":"probe"}{}`, err: "trailing data after the JSON value"},
		{name: "a long reason", in: `{"rollout":"r1","revision":1,"action":"cancel","reason":"` + strings.Repeat("x", 401) + `"}`, err: "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeProbeOrder([]byte(tt.in))
			if tt.err != "" {
				require.Error(t, err)
				if tt.name == "revision 0" || tt.name == "an empty object" {
					assert.ErrorIs(t, err, ErrInvalidRevision)
				} else {
					assert.ErrorIs(t, err, ErrInvalidField)
				}
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDesiredProbeMode(t *testing.T) {
	d := minimalDesired()
	require.NoError(t, d.Validate())
	d.Probe = ProbeOnOrder
	require.NoError(t, d.Validate())
	d.Probe = "later"
	assert.ErrorIs(t, d.Validate(), ErrInvalidField)
}
