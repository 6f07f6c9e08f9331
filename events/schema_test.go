package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compileSchema compiles the embedded schema of an event type as draft 2020-12
// with format assertions on.
func compileSchema(t *testing.T, eventType string) *jsonschema.Schema {
	t.Helper()
	raw, err := Schema(eventType)
	require.NoError(t, err)
	var doc struct {
		ID     string `json:"$id"`
		Schema string `json:"$schema"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", doc.Schema)
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.AssertContent = true
	require.NoError(t, c.AddResource(doc.ID, bytes.NewReader(raw)))
	s, err := c.Compile(doc.ID)
	require.NoError(t, err)
	return s
}

func TestSchemaUnknownType(t *testing.T) {
	_, err := Schema("pbxfleet.other.v1")
	assert.ErrorIs(t, err, ErrUnknownType)
}

// TestSchemaMatchesGoTypes keeps the schemas in step with the Go types: every
// object's properties are exactly the JSON field names, its required list is
// exactly the fields without omitempty, it allows no other properties, and each
// leaf has the JSON type of its Go field.
func TestSchemaMatchesGoTypes(t *testing.T) {
	for _, tt := range []struct {
		eventType string
		goType    reflect.Type
	}{
		{TypeDesired, reflect.TypeFor[Desired]()},
		{TypeResult, reflect.TypeFor[Result]()},
		{TypeStatus, reflect.TypeFor[Status]()},
	} {
		t.Run(tt.eventType, func(t *testing.T) {
			raw, err := Schema(tt.eventType)
			require.NoError(t, err)
			var root map[string]any
			require.NoError(t, json.Unmarshal(raw, &root))
			assert.Equal(t, tt.eventType, root["title"])
			assertSchemaType(t, root, root, tt.goType, "$")
		})
	}
}

func assertSchemaType(t *testing.T, root, node map[string]any, typ reflect.Type, path string) {
	t.Helper()
	node = resolveRef(t, root, node, path)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == reflect.TypeFor[time.Time]():
		assert.Equal(t, "string", node["type"], path)
		assert.Equal(t, "date-time", node["format"], path)
	case typ.Kind() == reflect.Struct:
		assert.Equal(t, "object", node["type"], path)
		assert.Equal(t, false, node["additionalProperties"], "%s allows unknown properties", path)
		props, _ := node["properties"].(map[string]any)
		var goNames, goRequired []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			require.NotEmpty(t, name, "%s.%s has no json name", path, f.Name)
			goNames = append(goNames, name)
			if !strings.Contains(opts, "omitempty") {
				goRequired = append(goRequired, name)
			} else if k := f.Type.Kind(); k != reflect.Slice && k != reflect.Map && k != reflect.Pointer && k != reflect.String && k != reflect.Uint64 {
				t.Errorf("%s.%s: omitempty on a %s", path, name, k)
			}
			if prop, ok := props[name].(map[string]any); assert.True(t, ok, "%s.%s is not in the schema", path, name) {
				assertSchemaType(t, root, prop, f.Type, path+"."+name)
			}
		}
		assert.ElementsMatch(t, goNames, keys(props), "%s: properties", path)
		assert.ElementsMatch(t, goRequired, stringList(node["required"]), "%s: required", path)
	case typ.Kind() == reflect.Slice:
		assert.Equal(t, "array", node["type"], path)
		items, ok := node["items"].(map[string]any)
		require.True(t, ok, "%s has no items", path)
		assertSchemaType(t, root, items, typ.Elem(), path+"[]")
	case typ.Kind() == reflect.Map:
		assert.Equal(t, "object", node["type"], path)
		values, ok := node["additionalProperties"].(map[string]any)
		require.True(t, ok, "%s has no additionalProperties schema", path)
		assertSchemaType(t, root, values, typ.Elem(), path+"{}")
	default:
		want := map[reflect.Kind]string{
			reflect.String: "string", reflect.Bool: "boolean", reflect.Float64: "number",
			reflect.Int: "integer", reflect.Int64: "integer", reflect.Uint64: "integer",
		}[typ.Kind()]
		require.NotEmpty(t, want, "%s: no JSON type for %s", path, typ)
		if enum, ok := node["enum"].([]any); ok {
			for _, v := range enum {
				_, isString := v.(string)
				assert.True(t, isString && want == "string", "%s: enum value %v for a %s", path, v, typ)
			}
			return
		}
		assert.Equal(t, want, node["type"], path)
	}
}

func resolveRef(t *testing.T, root, node map[string]any, path string) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	require.True(t, ok, "%s: unsupported $ref %s", path, ref)
	defs, _ := root["$defs"].(map[string]any)
	def, ok := defs[name].(map[string]any)
	require.True(t, ok, "%s: $ref %s not found", path, ref)
	return def
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func stringList(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, s := range arr {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// eventData returns the data object of an encoded structured event as the JSON
// schema validator wants it.
func eventData(t *testing.T, event []byte) any {
	t.Helper()
	var e struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(event, &e))
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func TestSchemaAcceptsEncodedPayloads(t *testing.T) {
	for name, p := range samplePayloads() {
		t.Run(name, func(t *testing.T) {
			s := compileSchema(t, p.EventType())
			assert.NoError(t, s.Validate(eventData(t, encode(t, p))))
		})
	}
}

// TestSchemaAndDecodeRejectTogether feeds payloads that break the contract to both
// the JSON Schema and Decode: neither may accept what the other rejects.
func TestSchemaAndDecodeRejectTogether(t *testing.T) {
	type obj = map[string]any
	trunk := func(d obj) obj { return d["trunk"].(obj) }
	tests := []struct {
		name string
		p    Payload
		edit func(d obj)
	}{
		{"desired unknown field", sampleDesired(), func(d obj) { d["command"] = "reload" }},
		{"desired unknown trunk field", sampleDesired(), func(d obj) { trunk(d)["file"] = "/etc/asterisk/sip.conf" }},
		{"desired missing port", sampleDesired(), func(d obj) { delete(trunk(d), "pbx_port") }},
		{"desired missing trunk", sampleDesired(), func(d obj) { delete(d, "trunk") }},
		{"desired revision 0", sampleDesired(), func(d obj) { d["revision"] = 0 }},
		{"desired revision string", sampleDesired(), func(d obj) { d["revision"] = "7" }},
		{"desired scenario", sampleDesired(), func(d obj) { trunk(d)["scenario"] = "moon" }},
		{"desired port range", sampleDesired(), func(d obj) { trunk(d)["oml_port"] = 65536 }},
		{"desired bad site", sampleDesired(), func(d obj) { trunk(d)["site"] = "Bsas" }},
		{"desired null dids", sampleDesired(), func(d obj) { trunk(d)["dids"] = nil }},
		{"desired empty codecs", sampleDesired(), func(d obj) { trunk(d)["pbx_codecs"] = []any{} }},
		{"desired no secret", sampleDesired(), func(d obj) { delete(trunk(d), "secret") }},
		{"desired secret and sealed", sampleDesired(), func(d obj) { trunk(d)["sealed_secret"], trunk(d)["sealed_by"] = "c2VhbGVk", "XKEY" }},
		{"desired sealed without sender", minimalDesired(), func(d obj) { delete(trunk(d), "sealed_by") }},
		{"desired sealed not base64", minimalDesired(), func(d obj) { trunk(d)["sealed_secret"] = "%%%" }},
		{"desired agents without routing", sampleDesired(), func(d obj) { delete(trunk(d), "agent_routing") }},
		{"desired pattern without pattern", sampleDesired(), func(d obj) { delete(trunk(d), "agent_pattern") }},
		{"desired agent without id", sampleDesired(), func(d obj) { delete(trunk(d)["agents"].([]any)[0].(obj), "id") }},
		{"desired route name", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "to pbx", "ring_time": 25, "dial_options": "Tt", "patterns": []any{obj{"pattern": "X."}}}
		}},
		{"desired route no patterns", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "r", "ring_time": 25, "dial_options": "Tt", "patterns": []any{}}
		}},
		{"desired route ring time", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "r", "ring_time": 0, "dial_options": "Tt", "patterns": []any{obj{"pattern": "X."}}}
		}},
		{"desired route prefix", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "r", "ring_time": 5, "dial_options": "Tt", "patterns": []any{obj{"prefix": "9a", "pattern": "X."}}}
		}},
		{"desired route name too long for OMniLeads", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": strings.Repeat("r", 129), "ring_time": 5, "dial_options": "Tt", "patterns": []any{obj{"pattern": "X."}}}
		}},
		{"desired route pattern too long", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "r", "ring_time": 5, "dial_options": "Tt", "patterns": []any{obj{"pattern": strings.Repeat("X", 101)}}}
		}},
		{"desired route unknown field", sampleDesired(), func(d obj) {
			trunk(d)["oml_route"] = obj{"name": "r", "ring_time": 5, "dial_options": "Tt", "patterns": []any{obj{"pattern": "X."}}, "trunk": "other"}
		}},
		{"result unknown outcome", sampleResult(), func(d obj) { d["outcome"] = "maybe" }},
		{"result unknown phase", sampleResult(), func(d obj) { d["timings"].(obj)["dance"] = 1 }},
		{"result negative timing", sampleResult(), func(d obj) { d["timings"].(obj)["verify"] = -1 }},
		{"result upper-case hash", sampleResult(), func(d obj) { d["files"].([]any)[0].(obj)["sha256"] = strings.Repeat("A", 64) }},
		{"result failure without reason", sampleResult(), func(d obj) { delete(d, "reason") }},
		{"result converged revision 0", minimalResult(), func(d obj) { d["revision"] = 0 }},
		{"result restored without rollback", sampleResult(), func(d obj) { d["outcome"] = "failed" }},
		{"result bad time", sampleResult(), func(d obj) { d["started_at"] = "yesterday" }},
		{"result probe without verdict", sampleResult(), func(d obj) { delete(d["probe"].(obj), "verdict") }},
		{"result missing reachable", sampleResult(), func(d obj) { delete(d["trunk"].(obj), "reachable") }},
		{"status drift files without drift", sampleStatus(), func(d obj) { d["drift"] = false }},
		{"status missing version", sampleStatus(), func(d obj) { delete(d, "version") }},
		{"status negative rtt", sampleStatus(), func(d obj) { d["trunk"].(obj)["rtt_ms"] = -1 }},
		{"status missing drift", minimalStatus(), func(d obj) { delete(d, "drift") }},
		{"status bad node", minimalStatus(), func(d obj) { d["node"] = "bsas-1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := mutate(t, encode(t, tt.p), func(m map[string]any) { tt.edit(dataOf(m)) })
			assert.Error(t, compileSchema(t, tt.p.EventType()).Validate(eventData(t, event)), "schema accepted it")
			_, err := Decode(event, structured())
			assert.Error(t, err, "Decode accepted it")
		})
	}
}

// TestSchemaAndDecodeAcceptARoute: a desired state with an OMniLeads outbound
// route passes the schema and survives Decode unchanged.
func TestSchemaAndDecodeAcceptARoute(t *testing.T) {
	d := sampleDesired()
	d.Trunk.OMLRoute = &OMLRoute{Name: "to_pbx", RingTime: 30, DialOptions: "Tt",
		Patterns:        []DialPattern{{Pattern: "XXXX"}, {Prefix: "9", Prepend: "+54", Pattern: "NXXXXXX"}},
		InboundCampaign: "ventas"}
	event := encode(t, d)
	assert.NoError(t, compileSchema(t, TypeDesired).Validate(eventData(t, event)))
	env, err := Decode(event, structured())
	require.NoError(t, err)
	assert.Equal(t, d.Trunk.OMLRoute, env.Payload.(Desired).Trunk.OMLRoute)
}
