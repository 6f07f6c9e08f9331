package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode checks that Decode never panics, that whatever it accepts is a
// valid payload for the event's subject, and that an accepted payload encodes
// and decodes again to the same value.
func FuzzDecode(f *testing.F) {
	for _, p := range samplePayloads() {
		data, _, err := Encode(SourceOrchestrator, p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, ContentTypeCloudEvents, "", "", "", "")
		f.Add(data, "", "", "", "", "")
		body, hdr := binaryOf(f, data)
		f.Add([]byte(body), "application/json", hdr["Ce-Specversion"][0], hdr["Ce-Id"][0], hdr["Ce-Type"][0], hdr["Ce-Subject"][0])
	}
	f.Add([]byte(`{"specversion":"1.0"}`), "", "", "", "", "")
	f.Add([]byte(`null`), "application/json", "1.0", "x", TypeDesired, "a.pbx")

	f.Fuzz(func(t *testing.T, data []byte, contentType, specversion, id, typ, subject string) {
		hdr := map[string][]string{}
		if contentType != "" {
			hdr[HeaderContentType] = []string{contentType}
		}
		for name, v := range map[string]string{"ce-specversion": specversion, "ce-id": id, "ce-type": typ, "ce-subject": subject} {
			if v != "" {
				hdr[name] = []string{v}
			}
		}
		if specversion != "" {
			hdr["ce-source"] = []string{SourceCLI}
		}
		env, err := Decode(data, hdr)
		if err != nil {
			if env.Payload != nil {
				t.Fatalf("error %v with a payload", err)
			}
			return
		}
		if err := env.Payload.Validate(); err != nil {
			t.Fatalf("accepted an invalid payload: %v", err)
		}
		if env.Payload.NodeID() != env.Event.Subject() {
			t.Fatalf("accepted node %q under subject %q", env.Payload.NodeID(), env.Event.Subject())
		}
		again, _, err := Encode(SourceCLI, env.Payload)
		if errors.Is(err, ErrTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		env2, err := Decode(again, nil)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if !payloadEqual(env.Payload, env2.Payload) {
			t.Fatalf("round trip changed the payload:\n%#v\n%#v", env.Payload, env2.Payload)
		}
	})
}

// payloadEqual compares payloads by their JSON: times that name the same instant
// in different zones are equal.
func payloadEqual(a, b Payload) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
