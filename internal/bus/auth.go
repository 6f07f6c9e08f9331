package bus

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
)

// Subjects of the JetStream API and of NATS services that the permissions below
// name. They follow what nats.go v1.55 (jetstream, micro) sends:
//
//   - js.KeyValue(bucket) asks $JS.API.STREAM.INFO.KV_<bucket>;
//   - kv.Get(key) on a bucket with allow_direct (every bucket jetstream creates)
//     asks $JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>, the form that names
//     the key in the subject, so a permission can name one key;
//   - kv.Put(key) publishes to $KV.<bucket>.<key>, js.Publish to the subject
//     itself; a core subscription to $KV.<bucket>.<key> sees each put (the node
//     agent learns of a new desired state that way: it needs no consumer);
//   - micro answers discovery on $SRV.<PING|INFO|STATS>[.<name>[.<id>]].
const (
	jsAPIPrefix     = "$JS.API."
	jsAccountInfo   = jsAPIPrefix + "INFO"
	jsStreamInfo    = jsAPIPrefix + "STREAM.INFO."
	jsDirectGet     = jsAPIPrefix + "DIRECT.GET."
	jsFlowControl   = "$JS.FC."
	kvStreamPrefix  = "KV_"
	kvSubjectPrefix = "$KV."
	srvPrefix       = "$SRV."
)

// NodePermissions returns the permissions of node <site>.<role>: exactly what its
// agent needs and nothing of any other node. It may read its own desired key
// (stream info, direct get of that key, and a subscription to the subject its
// puts are published on), publish its own result, put its own status key, serve
// its own endpoints and the discovery of the pbxfleet-node service, answer
// requests it received, and use the inbox natsclient.InboxPrefix(site, role). It may not
// create, read or delete any JetStream consumer: a consumer delivers to a
// subject of its creator's choosing, which no subject permission checks.
// Everything else is refused by the server. It does not validate site and role
// (callers pass ids checked with events.ParseNodeID).
//
// The known allowance: a node may answer the discovery requests of every
// pbxfleet-node instance, since micro draws instance ids at random.
func NodePermissions(site, role string) *server.Permissions {
	id := events.NodeID(site, role)
	desiredStream := kvStreamPrefix + events.BucketDesired
	statusStream := kvStreamPrefix + events.BucketStatus
	desiredKey := kvSubjectPrefix + events.BucketDesired + "." + id
	inbox := natsclient.InboxPrefix(site, role)

	pub := []string{
		jsAccountInfo,
		jsStreamInfo + desiredStream,
		jsStreamInfo + statusStream,
		jsDirectGet + desiredStream + "." + desiredKey,
		events.ResultSubject(site, role),
		kvSubjectPrefix + events.BucketStatus + "." + id,
	}
	sub := append([]string{
		inbox + ".>",
		desiredKey,
		events.NodeServiceGroup(site, role) + ".>",
	}, discoverySubjects(events.ServiceNode)...)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
		Response:  responsePermission(),
	}
}

// OrchestratorPermissions returns the permissions of the orchestrator and the
// control plane (`pbxfleet serve`), each JetStream API call by name and only on
// pbxfleet's four streams (the buckets pbxfleet_desired, pbxfleet_status,
// pbxfleet_rollouts and the stream PBXFLEET_RESULTS): account info; stream info
// and stream create of those four (a fresh store; creating one that exists
// with another shape fails); direct gets on the buckets; message gets on the
// results; the consumers its watches and feeds use (create, info, next,
// delete, flow control and acks); and the purge of its own rollouts bucket
// (kv.PurgeDeletes). It puts and deletes in the desired and rollout buckets,
// sends requests to the nodes' endpoints and to the discovery of services,
// serves the rollout endpoints, reads its default _INBOX and answers requests.
//
// It may not update any stream (so it cannot shrink or reshape the results,
// re-enable roll-ups on the status bucket, or add a source, mirror or
// republish to any of them), create any other stream, delete a stream or a
// message, purge one other than its rollouts bucket, purge the account, publish
// a node's result or status, or touch another account's API.
//
// The known allowance: the consumers its key-value watches use are push
// consumers (nats.go watches deliver to an inbox), and the server does not
// check a consumer's deliver subject against its creator's permissions. It
// may publish to the nodes' endpoints anyway, the services refuse what
// JetStream delivers, and no stream stores a delivery (so none forges a result).
func OrchestratorPermissions() *server.Permissions {
	pub := []string{jsAccountInfo}
	for _, st := range Streams() {
		pub = append(pub,
			jsStreamInfo+st,
			jsAPIPrefix+"STREAM.CREATE."+st,
			jsAPIPrefix+"CONSUMER.CREATE."+st,
			jsAPIPrefix+"CONSUMER.CREATE."+st+".>",
			jsAPIPrefix+"CONSUMER.INFO."+st+".*",
			jsAPIPrefix+"CONSUMER.DELETE."+st+".*",
			jsAPIPrefix+"CONSUMER.MSG.NEXT."+st+".*",
			jsFlowControl+st+".>",
			"$JS.ACK."+st+".>",
		)
	}
	for _, b := range []string{events.BucketDesired, events.BucketStatus, events.BucketRollouts} {
		pub = append(pub, jsDirectGet+kvStreamPrefix+b, jsDirectGet+kvStreamPrefix+b+".>")
	}
	pub = append(pub,
		jsAPIPrefix+"STREAM.MSG.GET."+events.StreamResults,
		jsAPIPrefix+"STREAM.PURGE."+kvStreamPrefix+events.BucketRollouts,
		kvSubjectPrefix+events.BucketDesired+".>",
		kvSubjectPrefix+events.BucketRollouts+".>",
		events.NodeSubjectPrefix+".>",
		srvPrefix+">",
	)
	// No core subscription to result subjects: it reads them through its
	// consumers (delivered to its inbox), and a listener of its own would let
	// a push consumer it creates deliver there, into the results stream.
	sub := append([]string{
		natsclient.DefaultInbox + ".>",
		events.RolloutSubjectPrefix + ".>",
	}, discoverySubjects(events.ServiceOrchestrator)...)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
		Response:  responsePermission(),
	}
}

// Streams returns the names of pbxfleet's four streams: the buckets'
// (KV_pbxfleet_desired, KV_pbxfleet_status, KV_pbxfleet_rollouts) and
// PBXFLEET_RESULTS.
func Streams() []string {
	return []string{
		kvStreamPrefix + events.BucketDesired,
		kvStreamPrefix + events.BucketStatus,
		kvStreamPrefix + events.BucketRollouts,
		events.StreamResults,
	}
}

// OperatorPermissions returns the permissions of an operator: everything (the
// nats CLI, `pbxfleet` commands, repairs by hand).
func OperatorPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}},
	}
}

// discoverySubjects returns the micro discovery subjects a service named name
// answers: $SRV.<verb>, $SRV.<verb>.<name> and $SRV.<verb>.<name>.<id>.
func discoverySubjects(name string) []string {
	var out []string
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		out = append(out, srvPrefix+verb, srvPrefix+verb+"."+name, srvPrefix+verb+"."+name+".*")
	}
	return out
}

// responsePermission lets a client answer each request it received once, within
// the server's default two minutes.
func responsePermission() *server.ResponsePermission {
	return &server.ResponsePermission{
		MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
		Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION,
	}
}
