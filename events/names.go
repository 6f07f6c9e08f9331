package events

import (
	"fmt"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/trunkmodel"
)

// Storage on the wire (docs/design.md#the-wire). The key of a node in
// BucketDesired and BucketStatus is its node id (NodeID).
const (
	// BucketDesired is the KV bucket that holds each node's desired state
	// (pbxfleet.desired.v1 events), key <site>.<role>.
	BucketDesired = "pbxfleet_desired"
	// BucketStatus is the KV bucket that holds each node's health and drift
	// (pbxfleet.status.v1 events), key <site>.<role>.
	BucketStatus = "pbxfleet_status"
	// BucketRollouts is the KV bucket that holds the orchestrator's rollout state.
	BucketRollouts = "pbxfleet_rollouts"
	// StreamResults is the stream that keeps the nodes' apply results
	// (pbxfleet.result.v1 events) on ResultSubjects.
	StreamResults = "PBXFLEET_RESULTS"
	// ResultSubjectPrefix is the first two tokens of every result subject.
	ResultSubjectPrefix = "pbxfleet.result"
	// ResultSubjects is the subject filter of StreamResults.
	ResultSubjects = ResultSubjectPrefix + ".>"
)

// Keys in the pbxfleet_rollouts bucket (written by the orchestrator; read by
// pbxfleet, the fleet page and the nats CLI).
const (
	// RolloutsKeyCurrent is the rollout lock and the pointer to the active
	// rollout: it exists (JSON {"id", "since"}) exactly while a rollout is
	// being driven (running, paused, rolling back, aborting).
	RolloutsKeyCurrent = "rollout.current"
	// RolloutsKeyLast names the most recently started rollout (JSON {"id"}).
	RolloutsKeyLast = "rollout.last"
	// RolloutsKeyPrefix starts the key of every rollout's header,
	// rollout.<id>, and of its sites, rollout.<id>.site.<site>.
	RolloutsKeyPrefix = "rollout."
	// RolloutsSiteInfix separates a rollout's id from a site in a site key.
	RolloutsSiteInfix = ".site."
	// RolloutsPlanPrefix starts the key of every site's intents,
	// plan.<id>.<site>; they hold the trunk secrets, so they are kept out of
	// the rollout record.
	RolloutsPlanPrefix = "plan."
)

// NATS services (nats.go/micro).
const (
	// ServiceNode is the micro service name every node agent registers.
	ServiceNode = "pbxfleet-node"
	// NodeSubjectPrefix is the first two tokens of every node endpoint subject.
	NodeSubjectPrefix = "pbxfleet.node"
	// EndpointCheck is the node endpoint that runs the trunk checks now.
	EndpointCheck = "check"
	// EndpointStatus is the node endpoint that answers the node's current status.
	EndpointStatus = "status"
	// EndpointProbe is the node endpoint that takes the orchestrator's probe
	// order (ProbeOrder) for a revision the node is awaiting a probe for.
	EndpointProbe = "probe"

	// ServiceOrchestrator is the micro service name of the orchestrator.
	ServiceOrchestrator = "pbxfleet-orchestrator"
	// RolloutSubjectPrefix is the subject group of the orchestrator's endpoints;
	// each verb below is one endpoint, e.g. pbxfleet.rollout.start.
	RolloutSubjectPrefix = "pbxfleet.rollout"
	// RolloutStart starts a rollout of a plan.
	RolloutStart = "start"
	// RolloutStatus reports a rollout's progress.
	RolloutStatus = "status"
	// RolloutPause pauses a rollout after the nodes in flight report.
	RolloutPause = "pause"
	// RolloutResume resumes a paused rollout.
	RolloutResume = "resume"
	// RolloutAbort stops a rollout where it is.
	RolloutAbort = "abort"
	// RolloutRollback puts the previous desired state back on the rollout's nodes.
	RolloutRollback = "rollback"
)

// CloudEvents types, sources and encodings.
const (
	// TypeDesired is the event type of a Desired payload.
	TypeDesired = "pbxfleet.desired.v1"
	// TypeResult is the event type of a Result payload.
	TypeResult = "pbxfleet.result.v1"
	// TypeStatus is the event type of a Status payload.
	TypeStatus = "pbxfleet.status.v1"

	// SpecVersion is the only CloudEvents spec version pbxfleet writes and reads.
	SpecVersion = "1.0"
	// SourcePrefix starts every source pbxfleet writes: pbxfleet/<component>.
	SourcePrefix = "pbxfleet/"
	// SourceOrchestrator is the source of the orchestrator's events.
	SourceOrchestrator = SourcePrefix + "orchestrator"
	// SourcePlanner is the source of the planner's events.
	SourcePlanner = SourcePrefix + "planner"
	// SourceCLI is the source of events written by the operator's CLI.
	SourceCLI = SourcePrefix + "cli"

	// ContentTypeCloudEvents is the content type of a structured-mode event.
	ContentTypeCloudEvents = "application/cloudevents+json"
	// ContentTypeJSON is the datacontenttype of every payload.
	ContentTypeJSON = "application/json"
	// HeaderContentType is the NATS header that carries the content type.
	HeaderContentType = "Content-Type"
	// HeaderMsgID is the JetStream deduplication header; pbxfleet sets it to the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderPrefixCE starts every binary-mode attribute header (ce-id, ce-type, ...).
	HeaderPrefixCE = "ce-"

	// MaxEventBytes is the largest encoded event (envelope and data) that Encode
	// writes and Decode reads.
	MaxEventBytes = 64 << 10
)

// Node roles.
const (
	// RolePBX is the Issabel side (chan_sip).
	RolePBX = "pbx"
	// RoleOML is the OMniLeads side (pjsip).
	RoleOML = "oml"
)

// ValidateSite returns nil when site is 1 to 63 characters of [a-z0-9_-], and an
// error wrapping ErrInvalidSite otherwise.
func ValidateSite(site string) error {
	if problem := trunkmodel.SiteProblem(site); problem != "" {
		return fmt.Errorf("%w: %q %s", ErrInvalidSite, textclip.Value(site), problem)
	}
	return nil
}

// ValidateRole returns nil when role is RolePBX or RoleOML, and an error wrapping
// ErrInvalidRole otherwise.
func ValidateRole(role string) error {
	if role != RolePBX && role != RoleOML {
		return fmt.Errorf("%w: %q is not %s or %s", ErrInvalidRole, textclip.Value(role), RolePBX, RoleOML)
	}
	return nil
}

// NodeID returns the id of a node, <site>.<role> (e.g. bsas-1.pbx): the key of the
// node in BucketDesired and BucketStatus and the subject attribute of its events.
// It does not validate; ParseNodeID does.
func NodeID(site, role string) string { return site + "." + role }

// ParseNodeID splits a node id into its site and role. On failure it returns an
// error wrapping ErrInvalidNode (and ErrInvalidSite or ErrInvalidRole when one
// part is bad).
func ParseNodeID(id string) (site, role string, err error) {
	site, role, ok := strings.Cut(id, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not <site>.<role>", ErrInvalidNode, textclip.Value(id))
	}
	if err := ValidateSite(site); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrInvalidNode, textclip.Value(id), err)
	}
	if err := ValidateRole(role); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrInvalidNode, textclip.Value(id), err)
	}
	return site, role, nil
}

// ResultSubject returns the subject a node publishes its results on,
// pbxfleet.result.<site>.<role>. It does not validate.
func ResultSubject(site, role string) string {
	return ResultSubjectPrefix + "." + NodeID(site, role)
}

// ParseResultSubject returns the site and role of a result subject. It returns an
// error wrapping ErrInvalidSubject when the subject is not under
// ResultSubjectPrefix, or wrapping ErrInvalidNode when its node id is invalid.
func ParseResultSubject(subject string) (site, role string, err error) {
	id, ok := strings.CutPrefix(subject, ResultSubjectPrefix+".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not under %s", ErrInvalidSubject, textclip.Value(subject), ResultSubjectPrefix)
	}
	site, role, err = ParseNodeID(id)
	if err != nil {
		return "", "", fmt.Errorf("result subject %q: %w", textclip.Value(subject), err)
	}
	return site, role, nil
}

// NodeServiceGroup returns the subject group of a node's service endpoints,
// pbxfleet.node.<site>.<role> (for micro's AddGroup). It does not validate.
func NodeServiceGroup(site, role string) string {
	return NodeSubjectPrefix + "." + NodeID(site, role)
}

// CheckSubject returns the subject of a node's check endpoint,
// pbxfleet.node.<site>.<role>.check. It does not validate.
func CheckSubject(site, role string) string {
	return NodeServiceGroup(site, role) + "." + EndpointCheck
}

// StatusSubject returns the subject of a node's status endpoint,
// pbxfleet.node.<site>.<role>.status. It does not validate.
func StatusSubject(site, role string) string {
	return NodeServiceGroup(site, role) + "." + EndpointStatus
}

// DesiredKeySubject returns the subject a put of node's desired key is published
// on, $KV.pbxfleet_desired.<site>.<role>: the agent subscribes to it to learn of a
// new desired state, then reads the key. It does not validate.
func DesiredKeySubject(node string) string { return "$KV." + BucketDesired + "." + node }

// ProbeSubject returns the subject of a node's probe endpoint,
// pbxfleet.node.<site>.<role>.probe. It does not validate.
func ProbeSubject(site, role string) string {
	return NodeServiceGroup(site, role) + "." + EndpointProbe
}

// RolloutVerbs returns the orchestrator's endpoint names in a fixed order.
func RolloutVerbs() []string {
	return []string{RolloutStart, RolloutStatus, RolloutPause, RolloutResume, RolloutAbort, RolloutRollback}
}

// RolloutSubject returns the subject of an orchestrator endpoint,
// pbxfleet.rollout.<verb>. It does not validate the verb.
func RolloutSubject(verb string) string { return RolloutSubjectPrefix + "." + verb }

// NodeSource returns the CloudEvents source of a node agent's events,
// pbxfleet/node/<site>.<role>. It does not validate.
func NodeSource(site, role string) string { return SourcePrefix + "node/" + NodeID(site, role) }

// EventTypes returns the event types pbxfleet knows, in a fixed order.
func EventTypes() []string { return []string{TypeDesired, TypeResult, TypeStatus} }
