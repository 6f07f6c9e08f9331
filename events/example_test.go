package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pbxfleet/pbxfleet/events"
)

func ExampleNodeID() {
	id := events.NodeID("bsas-1", events.RolePBX)
	fmt.Println(id)
	fmt.Println(events.ResultSubject("bsas-1", events.RolePBX))
	fmt.Println(events.CheckSubject("bsas-1", events.RolePBX))
	fmt.Println(events.StatusSubject("bsas-1", events.RolePBX))

	site, role, err := events.ParseNodeID(id)
	fmt.Println(site, role, err)

	_, _, err = events.ParseNodeID("bsas-1.web")
	fmt.Println(errors.Is(err, events.ErrInvalidNode), errors.Is(err, events.ErrInvalidRole))
	// Output:
	// bsas-1.pbx
	// pbxfleet.result.bsas-1.pbx
	// pbxfleet.node.bsas-1.pbx.check
	// pbxfleet.node.bsas-1.pbx.status
	// bsas-1 pbx <nil>
	// true true
}

func ExampleEncode() {
	d := events.Desired{
		Node:     events.NodeID("bsas-1", events.RoleOML),
		Revision: 7,
		Trunk: events.Trunk{
			Site: "bsas-1", Scenario: events.ScenarioLAN,
			PBXAddress: "10.0.0.10", PBXPort: 5060,
			OMLAddress: "10.0.0.20", OMLTransport: "trunk-transport", OMLPort: 5161,
			PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "issabel", OMLUser: "omnileads",
			SealedSecret: "c2VhbGVk", SealedBy: "XSENDERKEY",
			PBXCodecs: []string{"alaw"}, OMLCodecs: []string{"alaw", "ulaw"}, QualifyFrequency: 60,
		},
	}
	data, msgID, err := events.Encode(events.SourceOrchestrator, d)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Publish with js.PublishMsg and nats.Header(hdr); a KV put stores data alone.
	hdr := events.PublishHeader(msgID)
	fmt.Println(hdr[events.HeaderMsgID][0], hdr[events.HeaderContentType][0])

	var pretty bytes.Buffer
	_ = json.Indent(&pretty, data, "", "  ")
	fmt.Println(pretty.String())
	// Output:
	// desired-bsas-1.oml-7 application/cloudevents+json
	// {
	//   "specversion": "1.0",
	//   "id": "desired-bsas-1.oml-7",
	//   "source": "pbxfleet/orchestrator",
	//   "type": "pbxfleet.desired.v1",
	//   "subject": "bsas-1.oml",
	//   "datacontenttype": "application/json",
	//   "data": {
	//     "node": "bsas-1.oml",
	//     "revision": 7,
	//     "trunk": {
	//       "site": "bsas-1",
	//       "scenario": "lan",
	//       "pbx_address": "10.0.0.10",
	//       "pbx_port": 5060,
	//       "oml_address": "10.0.0.20",
	//       "oml_transport": "trunk-transport",
	//       "oml_port": 5161,
	//       "pbx_trunk_name": "omnileads",
	//       "oml_trunk_name": "issabel",
	//       "pbx_user": "issabel",
	//       "oml_user": "omnileads",
	//       "sealed_secret": "c2VhbGVk",
	//       "sealed_by": "XSENDERKEY",
	//       "pbx_codecs": [
	//         "alaw"
	//       ],
	//       "oml_codecs": [
	//         "alaw",
	//         "ulaw"
	//       ],
	//       "qualify_frequency": 60
	//     }
	//   }
	// }
}

// A node reads its own key of the pbxfleet_desired bucket. The value is what
// `nats kv put pbxfleet_desired bsas-1.pbx '...'` would store.
func ExampleDecodeDesired() {
	value := []byte(`{
	  "specversion": "1.0", "id": "desired-bsas-1.pbx-8", "source": "pbxfleet/cli",
	  "type": "pbxfleet.desired.v1", "subject": "bsas-1.pbx", "datacontenttype": "application/json",
	  "data": {"node": "bsas-1.pbx", "revision": 8, "trunk": {
	    "site": "bsas-1", "scenario": "cloud", "pbx_address": "192.168.1.10", "pbx_port": 5060,
	    "oml_address": "203.0.113.5", "oml_transport": "trunk-nat-transport", "oml_port": 5162,
	    "pbx_trunk_name": "omnileads", "oml_trunk_name": "issabel", "pbx_user": "issabel", "oml_user": "omnileads",
	    "secret": "issabelOML", "pbx_codecs": ["alaw"], "oml_codecs": ["alaw", "ulaw"], "qualify_frequency": 60,
	    "dids": [{"number": "098098", "extension": "5000"}]}}
	}`)

	d, err := events.DecodeDesired(value, nil, "bsas-1.pbx")
	fmt.Println(d.Node, d.Revision, d.Trunk.Scenario, d.Trunk.OMLPort, d.Trunk.DIDs[0].Number, err)

	// The same value under another node's key is refused.
	_, err = events.DecodeDesired(value, nil, "bsas-2.pbx")
	fmt.Println(errors.Is(err, events.ErrSubjectMismatch))
	// Output:
	// bsas-1.pbx 8 cloud 5162 098098 <nil>
	// true
}

// Binary mode: the attributes travel as ce- headers and the body is the data,
// e.g. `nats pub -H ce-specversion:1.0 -H ce-type:pbxfleet.status.v1 ...`.
func ExampleDecode() {
	header := map[string][]string{
		"ce-specversion": {"1.0"},
		"ce-id":          {"status-bsas-1.oml-1"},
		"ce-source":      {"pbxfleet/node/bsas-1.oml"},
		"ce-type":        {"pbxfleet.status.v1"},
		"ce-subject":     {"bsas-1.oml"},
		"Content-Type":   {"application/json"},
	}
	body := []byte(`{"node":"bsas-1.oml","applied_revision":7,"outcome":"converged",
		"trunk":{"state":"Avail","rtt_ms":0.8,"reachable":true},"drift":false,"healthy":true,
		"version":"v0.1.0","at":"2025-03-14T15:09:26Z"}`)

	env, err := events.Decode(body, header)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := env.Payload.(events.Status)
	fmt.Println(env.Mode, env.Event.Type(), s.Node, s.AppliedRevision, s.Trunk.State, s.Healthy)

	// A payload field the contract does not know is refused.
	_, err = events.Decode(bytes.Replace(body, []byte(`"drift"`), []byte(`"exec":"reboot","drift"`), 1), header)
	fmt.Println(errors.Is(err, events.ErrMalformed))
	// Output:
	// binary pbxfleet.status.v1 bsas-1.oml 7 Avail true
	// true
}
