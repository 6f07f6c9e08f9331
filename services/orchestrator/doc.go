// Package orchestrator is pbxfleet's rollout engine (docs/design.md#the-rollout-engine,
// step 3): it takes a plan (each node's intent) and a strategy (canary, waves,
// parallelism, bake, site deadline, failure budget, on-failure action), puts
// each node's desired state in KV pbxfleet_desired wave by wave, reads the
// nodes' results from stream PBXFLEET_RESULTS, counts converged, failed and
// unreachable sites, and rolls back or pauses when the budget is spent.
//
// The engine is level-triggered, in the manner of argo-rollouts: a rollout's
// state is a JSON record in KV pbxfleet_rollouts (key rollout.<id>) updated
// only by compare-and-set, and every pass reads the record and the results
// observed since the record's stream cursor, runs idempotent steps in a fixed
// order (fold results, expire deadlines, evaluate sites, check the budget,
// advance waves, start sites; or cover, restore and finish when rolling back or
// aborting), writes its progress and returns while a step is unfinished. A
// desired key is put only by compare-and-set and only when it does not already
// hold the rollout's revision, so a driver that dies mid-wave is replaced by
// any other (Run, Serve) without any node getting a revision twice. Pause,
// resume, abort and rollback are edits of the record that the driver notices.
//
// One rollout is active at a time: Start takes the lock key rollout.current
// with a create-only put and the rollout releases it when it ends. The intents
// (which carry the trunk secrets) are kept apart from the record, under
// plan.<id>.<site>, so the record can be shown to anyone who may read rollouts.
package orchestrator
