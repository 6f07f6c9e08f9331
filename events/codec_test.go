package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripStructured(t *testing.T) {
	for name, p := range samplePayloads() {
		t.Run(name, func(t *testing.T) {
			data, msgID, err := Encode(SourceOrchestrator, p)
			require.NoError(t, err)
			assert.Equal(t, p.EventID(), msgID)

			again, _, err := Encode(SourceOrchestrator, p)
			require.NoError(t, err)
			assert.Equal(t, data, again, "encoding is deterministic")

			env, err := Decode(data, PublishHeader(msgID))
			require.NoError(t, err)
			assert.Equal(t, ModeStructured, env.Mode)
			assert.Equal(t, p, env.Payload)
			assert.Equal(t, msgID, env.Event.ID())
			assert.Equal(t, p.EventType(), env.Event.Type())
			assert.Equal(t, p.NodeID(), env.Event.Subject())
			assert.Equal(t, SourceOrchestrator, env.Event.Source())
			assert.Equal(t, ContentTypeJSON, env.Event.DataContentType())

			// Without headers (nats CLI, a KV get) the body alone is enough.
			bare, err := Decode(data, nil)
			require.NoError(t, err)
			assert.Equal(t, p, bare.Payload)
		})
	}
}

func TestEventIDs(t *testing.T) {
	assert.Equal(t, "desired-bsas-1.pbx-7", sampleDesired().EventID())
	assert.Equal(t, fmt.Sprintf("result-bsas-1.pbx-7-rolled_back-%d", t0.UnixNano()), sampleResult().EventID())
	assert.Equal(t, fmt.Sprintf("status-bsas-1.pbx-%d", t1.UnixNano()), sampleStatus().EventID())
}

func TestEventAttributes(t *testing.T) {
	e, err := NewEvent(NodeSource("bsas-1", RolePBX), sampleResult())
	require.NoError(t, err)
	assert.Equal(t, "1.0", e.SpecVersion())
	assert.Equal(t, "pbxfleet/node/bsas-1.pbx", e.Source())
	assert.True(t, t1.Equal(e.Time()), "result time is finished_at")

	e, err = NewEvent(SourceOrchestrator, sampleDesired())
	require.NoError(t, err)
	assert.True(t, e.Time().IsZero(), "a desired state has no time")
}

// binaryOf returns the binary-mode form of an encoded event: attributes in ce-
// headers spelled with mixed case, data in the body.
func binaryOf(t testing.TB, structuredData []byte) ([]byte, map[string][]string) {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(structuredData, &m))
	hdr := map[string][]string{"Content-Type": {"application/json; charset=utf-8"}}
	for _, a := range []string{"specversion", "id", "source", "type", "subject", "time"} {
		raw, ok := m[a]
		if !ok {
			continue
		}
		var s string
		require.NoError(t, json.Unmarshal(raw, &s))
		hdr["Ce-"+strings.ToUpper(a[:1])+a[1:]] = []string{s}
	}
	return m["data"], hdr
}

func TestDecodeBinary(t *testing.T) {
	for name, p := range samplePayloads() {
		t.Run(name, func(t *testing.T) {
			body, hdr := binaryOf(t, encode(t, p))
			hdr["ce-traceparent"] = []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
			env, err := Decode(body, hdr)
			require.NoError(t, err)
			assert.Equal(t, ModeBinary, env.Mode)
			assert.Equal(t, p, env.Payload)
			assert.Equal(t, p.EventID(), env.Event.ID())
			assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", env.Event.Extensions()["traceparent"])
		})
	}
}

func TestDecodeStructuredWinsOverCEHeaders(t *testing.T) {
	data := encode(t, sampleDesired())
	hdr := structured()
	hdr["ce-subject"] = []string{"bsas-2.pbx"}
	env, err := Decode(data, hdr)
	require.NoError(t, err)
	assert.Equal(t, ModeStructured, env.Mode)
	assert.Equal(t, "bsas-1.pbx", env.Event.Subject())
}

func TestDecodeRejectsStructured(t *testing.T) {
	desired := encode(t, sampleDesired())
	result := encode(t, sampleResult())
	status := encode(t, sampleStatus())
	edit := func(data []byte, f func(m map[string]any)) []byte { return mutate(t, data, f) }
	editData := func(data []byte, f func(d map[string]any)) []byte {
		return mutate(t, data, func(m map[string]any) { f(dataOf(m)) })
	}
	trunkOf := func(d map[string]any) map[string]any { return d["trunk"].(map[string]any) }

	tests := []struct {
		name string
		data []byte
		hdr  map[string][]string
		errs []error
	}{
		{"too large", append(bytes.Repeat([]byte(" "), MaxEventBytes), desired...), nil, []error{ErrTooLarge}},
		{"not json", []byte("hello"), nil, []error{ErrMalformed}},
		{"json array", []byte("[1,2]"), nil, []error{ErrMalformed}},
		{"json null", []byte("null"), nil, []error{ErrMalformed}},
		{"empty body", nil, nil, []error{ErrMalformed}},
		{"truncated", desired[:len(desired)/2], nil, []error{ErrMalformed}},
		{"missing specversion", edit(desired, func(m map[string]any) { delete(m, "specversion") }), nil, []error{ErrMissingAttribute}},
		{"missing id", edit(desired, func(m map[string]any) { delete(m, "id") }), nil, []error{ErrMissingAttribute}},
		{"missing source", edit(desired, func(m map[string]any) { delete(m, "source") }), nil, []error{ErrMissingAttribute}},
		{"missing type", edit(desired, func(m map[string]any) { delete(m, "type") }), nil, []error{ErrMissingAttribute}},
		{"missing subject", edit(desired, func(m map[string]any) { delete(m, "subject") }), nil, []error{ErrMissingAttribute}},
		{"blank subject", edit(desired, func(m map[string]any) { m["subject"] = " " }), nil, []error{ErrMissingAttribute}},
		{"null id", edit(desired, func(m map[string]any) { m["id"] = nil }), nil, []error{ErrMissingAttribute}},
		{"numeric id", edit(desired, func(m map[string]any) { m["id"] = 7 }), nil, []error{ErrMalformed}},
		{"specversion 0.3", edit(desired, func(m map[string]any) { m["specversion"] = "0.3" }), nil, []error{ErrUnsupportedSpecVersion}},
		{"specversion 2.0", edit(desired, func(m map[string]any) { m["specversion"] = "2.0" }), nil, []error{ErrUnsupportedSpecVersion}},
		{"unknown type", edit(desired, func(m map[string]any) { m["type"] = "pbxfleet.desired.v2" }), nil, []error{ErrUnknownType}},
		{"type of another payload", edit(desired, func(m map[string]any) { m["type"] = TypeStatus }), nil, []error{ErrMalformed}},
		{"subject of another node", edit(desired, func(m map[string]any) { m["subject"] = "bsas-2.pbx" }), nil, []error{ErrSubjectMismatch}},
		{"trunk of another site", editData(desired, func(d map[string]any) { trunkOf(d)["site"] = "bsas-2" }), nil, []error{ErrSubjectMismatch}},
		{"bad time", edit(result, func(m map[string]any) { m["time"] = "yesterday" }), nil, []error{ErrMalformed}},
		{"text datacontenttype", edit(desired, func(m map[string]any) { m["datacontenttype"] = "text/plain" }), nil, []error{ErrMalformed}},
		{"no data", edit(desired, func(m map[string]any) { delete(m, "data") }), nil, []error{ErrMalformed}},
		{"null data", edit(desired, func(m map[string]any) { m["data"] = nil }), nil, []error{ErrMalformed}},
		{"string data", edit(desired, func(m map[string]any) { m["data"] = "x" }), nil, []error{ErrMalformed}},
		{"unknown data field", editData(desired, func(d map[string]any) { d["command"] = "rm -rf /" }), nil, []error{ErrMalformed}},
		{"unknown nested field", editData(desired, func(d map[string]any) { trunkOf(d)["path"] = "/etc/passwd" }), nil, []error{ErrMalformed}},
		{"case-folded field", editData(desired, func(d map[string]any) { d["Node"] = d["node"]; delete(d, "node") }), nil, []error{ErrMalformed}},
		{"missing required field", editData(desired, func(d map[string]any) { delete(trunkOf(d), "pbx_port") }), nil, []error{ErrMalformed}},
		{"null field", editData(desired, func(d map[string]any) { trunkOf(d)["dids"] = nil }), nil, []error{ErrMalformed}},
		{"wrong field type", editData(desired, func(d map[string]any) { d["revision"] = "7" }), nil, []error{ErrMalformed}},
		{"negative revision", editData(desired, func(d map[string]any) { d["revision"] = -1 }), nil, []error{ErrMalformed}},
		{"revision 0", editData(desired, func(d map[string]any) { d["revision"] = 0 }), nil, []error{ErrInvalidRevision}},
		{"invalid node", edit(desired, func(m map[string]any) { m["subject"] = "BSAS.pbx"; dataOf(m)["node"] = "BSAS.pbx" }), nil, []error{ErrInvalidNode, ErrInvalidSite}},
		{"invalid role", edit(desired, func(m map[string]any) { m["subject"] = "bsas-1.web"; dataOf(m)["node"] = "bsas-1.web" }), nil, []error{ErrInvalidNode, ErrInvalidRole}},
		{"invalid scenario", editData(desired, func(d map[string]any) { trunkOf(d)["scenario"] = "moon" }), nil, []error{ErrInvalidField}},
		{"invalid agent routing", editData(desired, func(d map[string]any) { trunkOf(d)["agent_routing"] = "all" }), nil, []error{ErrInvalidField}},
		{"invalid outcome", editData(result, func(d map[string]any) { d["outcome"] = "maybe" }), nil, []error{ErrInvalidField}},
		{"invalid status outcome", editData(status, func(d map[string]any) { d["outcome"] = "fine" }), nil, []error{ErrInvalidField}},
		{"unknown phase", editData(result, func(d map[string]any) { d["timings"].(map[string]any)["dance"] = 1 }), nil, []error{ErrInvalidField}},
		{"invalid UTF-8 in a name", bytes.Replace(desired, []byte(`"Ana"`), []byte("\"An\xe1\""), 1), nil, []error{ErrMalformed}},
		{"lone surrogate escape in a name", bytes.Replace(desired, []byte(`"Ana"`), []byte(`"An\ud800"`), 1), nil, []error{ErrMalformed}},
		{"U+FFFD in a name", bytes.Replace(desired, []byte(`"Ana"`), []byte("\"An\uFFFD\""), 1), nil, []error{ErrMalformed}},
		{"content type text", desired, map[string][]string{"Content-Type": {"text/plain"}}, []error{ErrMalformed}},
		{"content type garbage", desired, map[string][]string{"Content-Type": {"//"}}, []error{ErrMalformed}},
		{"content type twice", desired, map[string][]string{"Content-Type": {ContentTypeCloudEvents, ContentTypeCloudEvents}}, []error{ErrMalformed}},
		{"unknown attribute", edit(desired, func(m map[string]any) { m["command"] = "reload" }), nil, []error{ErrMalformed}},
		{"unknown extension", edit(desired, func(m map[string]any) { m["partitionkey"] = "x" }), nil, []error{ErrMalformed}},
		{"data_base64 beside data", edit(desired, func(m map[string]any) { m["data_base64"] = "e30=" }), nil, []error{ErrMalformed}},
		{"the secret twice (the last would win)", bytes.Replace(desired, []byte(`"secret":"issabelOML"`), []byte(`"secret":"issabelOML","secret":"0ther-Secret-42"`), 1), nil, []error{ErrMalformed}},
		{"the subject twice", bytes.Replace(desired, []byte(`"subject":"bsas-1.pbx"`), []byte(`"subject":"bsas-1.pbx","subject":"bsas-1.pbx"`), 1), nil, []error{ErrMalformed}},
		{"a key twice deep in data", bytes.Replace(desired, []byte(`"number":"098098"`), []byte(`"number":"098098","number":"098098"`), 1), nil, []error{ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := tt.hdr
			if hdr == nil {
				hdr = structured()
			}
			_, err := Decode(tt.data, hdr)
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.ErrorIs(t, err, want)
			}
		})
	}
}

func TestDecodeRejectsBinary(t *testing.T) {
	body, base := binaryOf(t, encode(t, sampleDesired()))
	with := func(f func(h map[string][]string)) map[string][]string {
		h := make(map[string][]string, len(base))
		for k, v := range base {
			h[k] = v
		}
		f(h)
		return h
	}
	tests := []struct {
		name string
		body []byte
		hdr  map[string][]string
		err  error
	}{
		{"missing id", body, with(func(h map[string][]string) { delete(h, "Ce-Id") }), ErrMissingAttribute},
		{"missing subject", body, with(func(h map[string][]string) { delete(h, "Ce-Subject") }), ErrMissingAttribute},
		{"missing specversion", body, with(func(h map[string][]string) { delete(h, "Ce-Specversion") }), ErrMissingAttribute},
		{"specversion 0.3", body, with(func(h map[string][]string) { h["Ce-Specversion"] = []string{"0.3"} }), ErrUnsupportedSpecVersion},
		{"unknown type", body, with(func(h map[string][]string) { h["Ce-Type"] = []string{"com.example.x"} }), ErrUnknownType},
		{"subject of another node", body, with(func(h map[string][]string) { h["Ce-Subject"] = []string{"bsas-2.pbx"} }), ErrSubjectMismatch},
		{"attribute twice", body, with(func(h map[string][]string) { h["ce-id"] = []string{"other"} }), ErrMalformed},
		{"two values", body, with(func(h map[string][]string) { h["Ce-Id"] = []string{"a", "b"} }), ErrMalformed},
		{"ce-datacontenttype", body, with(func(h map[string][]string) { h["ce-datacontenttype"] = []string{"application/json"} }), ErrMalformed},
		{"bad extension name", body, with(func(h map[string][]string) { h["ce-bad_name"] = []string{"x"} }), ErrMalformed},
		{"unknown attribute header", body, with(func(h map[string][]string) { h["ce-command"] = []string{"reload"} }), ErrMalformed},
		{"the secret twice in the data", bytes.Replace(body, []byte(`"secret":"issabelOML"`), []byte(`"secret":"issabelOML","secret":"0ther-Secret-42"`), 1), base, ErrMalformed},
		{"bad time", body, with(func(h map[string][]string) { h["ce-time"] = []string{"now"} }), ErrMalformed},
		{"xml data", body, with(func(h map[string][]string) { h["Content-Type"] = []string{"application/xml"} }), ErrMalformed},
		{"no data", nil, base, ErrMalformed},
		{"trailing data", append(append([]byte{}, body...), []byte(` {}`)...), base, ErrMalformed},
		{"headers too large", body, with(func(h map[string][]string) { h["ce-pad"] = []string{strings.Repeat("x", MaxEventBytes)} }), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.body, tt.hdr)
			assert.ErrorIs(t, err, tt.err)
		})
	}
}

func TestTypedDecoders(t *testing.T) {
	desired := encode(t, sampleDesired())
	result := encode(t, sampleResult())
	status := encode(t, sampleStatus())
	hdr := structured()

	d, err := DecodeDesired(desired, hdr, "bsas-1.pbx")
	require.NoError(t, err)
	assert.Equal(t, sampleDesired(), d)
	r, err := DecodeResult(result, hdr, "pbxfleet.result.bsas-1.pbx")
	require.NoError(t, err)
	assert.Equal(t, sampleResult(), r)
	s, err := DecodeStatus(status, hdr, "bsas-1.pbx")
	require.NoError(t, err)
	assert.Equal(t, sampleStatus(), s)

	tests := []struct {
		name string
		call func() error
		errs []error
	}{
		{"desired under another key", func() error { _, err := DecodeDesired(desired, hdr, "bsas-2.pbx"); return err }, []error{ErrSubjectMismatch}},
		{"desired under the other role", func() error { _, err := DecodeDesired(desired, hdr, "bsas-1.oml"); return err }, []error{ErrSubjectMismatch}},
		{"desired under a bad key", func() error { _, err := DecodeDesired(desired, hdr, "bsas-1"); return err }, []error{ErrInvalidNode}},
		{"status in the desired bucket", func() error { _, err := DecodeDesired(status, hdr, "bsas-1.pbx"); return err }, []error{ErrUnexpectedType}},
		{"result on another node's subject", func() error { _, err := DecodeResult(result, hdr, "pbxfleet.result.a.pbx"); return err }, []error{ErrSubjectMismatch}},
		{"result on a bad subject", func() error { _, err := DecodeResult(result, hdr, "pbxfleet.status.bsas-1.pbx"); return err }, []error{ErrInvalidSubject}},
		{"desired on the result subject", func() error { _, err := DecodeResult(desired, hdr, "pbxfleet.result.bsas-1.pbx"); return err }, []error{ErrUnexpectedType}},
		{"status under another key", func() error { _, err := DecodeStatus(status, hdr, "bsas-9.pbx"); return err }, []error{ErrSubjectMismatch}},
		{"garbage status", func() error { _, err := DecodeStatus([]byte("{"), hdr, "bsas-1.pbx"); return err }, []error{ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.ErrorIs(t, err, want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	huge := sampleDesired()
	for i := range 2000 {
		huge.Trunk.Agents = append(huge.Trunk.Agents, Agent{ID: fmt.Sprint(i), SIPNumber: "1006", Name: "agent with a long name"})
	}
	tests := []struct {
		name   string
		source string
		p      Payload
		err    error
	}{
		{"empty source", "", sampleDesired(), ErrInvalidSource},
		{"foreign source", "orchestrator", sampleDesired(), ErrInvalidSource},
		{"prefix only", "pbxfleet/", sampleDesired(), ErrInvalidSource},
		{"space in source", "pbxfleet/node/a b", sampleDesired(), ErrInvalidSource},
		{"nil payload", SourceOrchestrator, nil, ErrMalformed},
		{"invalid payload", SourceOrchestrator, Desired{Node: "bsas-1.pbx"}, ErrInvalidRevision},
		{"too large", SourceOrchestrator, huge, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, msgID, err := Encode(tt.source, tt.p)
			assert.ErrorIs(t, err, tt.err)
			assert.Nil(t, data)
			assert.Empty(t, msgID)
		})
	}
}

func TestPublishHeader(t *testing.T) {
	assert.Equal(t, map[string][]string{
		"Content-Type": {"application/cloudevents+json"},
		"Nats-Msg-Id":  {"desired-bsas-1.pbx-7"},
	}, PublishHeader("desired-bsas-1.pbx-7"))
}

// TestResultQuotingLatin1OutputDecodes: a result quotes Asterisk's output,
// which can be Latin-1 ("Adrián" as a single 0xe1 byte); json makes it valid
// UTF-8 with U+FFFD, and the result must still decode (only desired states
// refuse U+FFFD, since their text reaches Asterisk's files).
func TestResultQuotingLatin1OutputDecodes(t *testing.T) {
	res := sampleResult()
	res.Checks[0].Raw = []string{"  Callerid     : \"Adri\xe1n\" <1006>"}
	got, err := DecodeResult(encode(t, res), structured(), ResultSubject("bsas-1", RolePBX))
	require.NoError(t, err)
	assert.Equal(t, "  Callerid     : \"Adri\uFFFDn\" <1006>", got.Checks[0].Raw[0])
}
