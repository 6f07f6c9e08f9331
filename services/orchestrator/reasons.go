package orchestrator

// Reasons are the machine-readable causes of a rollout's phase changes and of a
// site's or node's outcome (as argo-rollouts' conditions): short CamelCase words
// that tools can match. Messages are their text for people; each Msg* is a
// format for fmt.Sprintf with the arguments named in its comment. Every reason
// and message that reaches a user lives in this file.
const (
	// ReasonStarted: the rollout was created.
	ReasonStarted = "RolloutStarted"
	// ReasonWaveStarted: the sites of a wave are being put.
	ReasonWaveStarted = "WaveStarted"
	// ReasonWaveCompleted: every site of a wave reported within the budget.
	ReasonWaveCompleted = "WaveCompleted"
	// ReasonBaking: waiting for the bake time after a successful wave.
	ReasonBaking = "Baking"
	// ReasonSucceeded: every wave completed within the budget.
	ReasonSucceeded = "RolloutSucceeded"
	// ReasonCanaryFailed: a canary site did not converge.
	ReasonCanaryFailed = "CanaryFailed"
	// ReasonBudgetExceeded: more sites failed or were unreachable than the
	// strategy allows, overall or in one wave.
	ReasonBudgetExceeded = "FailureBudgetExceeded"
	// ReasonPaused: an operator paused the rollout.
	ReasonPaused = "PausedByOperator"
	// ReasonResumed: an operator resumed the rollout.
	ReasonResumed = "Resumed"
	// ReasonAbortRequested: an operator aborted the rollout.
	ReasonAbortRequested = "AbortRequested"
	// ReasonAborted: the abort finished restoring the sites that had not converged.
	ReasonAborted = "RolloutAborted"
	// ReasonRollbackRequested: an operator, or the failure budget, asked for a rollback.
	ReasonRollbackRequested = "RollbackRequested"
	// ReasonRolledBack: every node the rollout touched runs its previous intent again.
	ReasonRolledBack = "RolledBack"
	// ReasonRollbackIncomplete: some node did not confirm its previous intent.
	ReasonRollbackIncomplete = "RollbackIncomplete"

	// ReasonUpToDate: the node (or every node of the site) already runs the
	// planned intent at its current revision; nothing is put.
	ReasonUpToDate = "UpToDate"
	// ReasonDeadline: a node did not report before the site deadline.
	ReasonDeadline = "DeadlineExceeded"
	// ReasonNodeFailed: a node reported failed, rolled_back or rejected.
	ReasonNodeFailed = "NodeFailed"
	// ReasonKeyChanged: the node's desired key holds a revision this rollout
	// neither read nor wrote (someone else wrote it); the rollout leaves it alone.
	ReasonKeyChanged = "DesiredKeyChanged"
	// ReasonNoPrevious: the node had no desired state before this rollout, so
	// there is nothing to restore.
	ReasonNoPrevious = "NoPreviousState"
	// ReasonNotPut: the rollout never put this node, so there is nothing to restore.
	ReasonNotPut = "NeverPut"
	// ReasonPutFailed: the node's desired state could not be put (too large,
	// invalid, or NATS kept failing until the site deadline).
	ReasonPutFailed = "PutFailed"
	// ReasonSuperseded: a later revision replaced this rollout's revision on the
	// node; restoring would undo someone else's change.
	ReasonSuperseded = "Superseded"
)

// Messages, each the text of the reason of the same name.
const (
	// MsgStarted: plan hash, sites, waves, skipped sites.
	MsgStarted = "rollout of plan %s started: %d sites in %d waves, %d skipped as already at the planned revision"
	// MsgWaveStarted: wave number, wave count, sites in the wave.
	MsgWaveStarted = "wave %d of %d started: %d sites"
	// MsgCanaryStarted: sites in the canary wave.
	MsgCanaryStarted = "canary wave started: %d sites"
	// MsgWaveCompleted: wave number, converged, failed, unreachable.
	MsgWaveCompleted = "wave %d completed: %d converged, %d failed, %d unreachable"
	// MsgBaking: bake time, wave number.
	MsgBaking = "baking %s before wave %d"
	// MsgSucceeded: converged, failed, unreachable, skipped.
	MsgSucceeded = "rollout succeeded: %d converged, %d failed, %d unreachable, %d skipped"
	// MsgCanaryFailed: the canary sites that failed or were unreachable.
	MsgCanaryFailed = "canary did not converge (%s); later waves are not started"
	// MsgBudgetFailed: failed sites, allowed.
	MsgBudgetFailed = "%d sites failed, the budget allows %d"
	// MsgBudgetUnreachable: unreachable sites, allowed.
	MsgBudgetUnreachable = "%d sites unreachable, the budget allows %d"
	// MsgWaveBudgetFailed: wave, failed sites in it, allowed.
	MsgWaveBudgetFailed = "wave %d: %d sites failed, the per-wave budget allows %d"
	// MsgWaveBudgetUnreachable: wave, unreachable sites in it, allowed.
	MsgWaveBudgetUnreachable = "wave %d: %d sites unreachable, the per-wave budget allows %d"
	// MsgOnFailureRollback: the budget message.
	MsgOnFailureRollback = "%s; rolling back every node this rollout touched"
	// MsgOnFailurePause: the budget message.
	MsgOnFailurePause = "%s; paused: resume to accept these failures and go on, or abort or roll back"
	// MsgPaused has no arguments.
	MsgPaused = "paused by an operator; sites in flight finish, no new site starts"
	// MsgResumed: failed and unreachable sites accepted.
	MsgResumed = "resumed by an operator; %d failed and %d unreachable sites so far are accepted"
	// MsgAbortRequested has no arguments.
	MsgAbortRequested = "aborted by an operator; converged sites keep the new intent, the others get their previous intent back"
	// MsgAborted: sites kept, nodes restored, nodes not confirmed.
	MsgAborted = "rollout aborted: %d converged sites kept, %d nodes restored, %d nodes did not confirm the restore"
	// MsgRollbackRequested has no arguments.
	MsgRollbackRequested = "rollback requested by an operator; every node this rollout touched gets its previous intent back"
	// MsgRolledBack: nodes restored.
	MsgRolledBack = "rolled back: %d nodes run their previous intent again"
	// MsgRollbackIncomplete: nodes restored, nodes that did not confirm, their ids.
	MsgRollbackIncomplete = "rollback incomplete: %d nodes restored, %d did not confirm (%s)"

	// MsgUpToDate: revision.
	MsgUpToDate = "already applied at revision %d"
	// MsgDeadline: deadline, the nodes that did not report.
	MsgDeadline = "no result within %s from %s"
	// MsgNodeFailed: node, outcome, the node's reason.
	MsgNodeFailed = "%s %s: %s"
	// MsgKeyChanged: node, revision found, rollout that wrote it.
	MsgKeyChanged = "desired key %s holds revision %d from %q, which this rollout did not expect"
	// MsgNoPrevious: node.
	MsgNoPrevious = "%s had no desired state before this rollout; it keeps the new one"
	// MsgNotPut: node.
	MsgNotPut = "%s was never put by this rollout"
	// MsgSuperseded: node, revision found.
	MsgSuperseded = "%s now holds revision %d from another change; not restored"
	// MsgRestoreUnconfirmed: node, restore revision, outcome or MsgNoResult.
	MsgRestoreUnconfirmed = "%s restore revision %d: %s"
	// MsgNoResult stands for the outcome of a node that did not report.
	MsgNoResult = "no result"
	// MsgProbeCancelled: the node that ended otherwise, its outcome, its reason.
	MsgProbeCancelled = "the far side %s ended %s (%s); nothing to prove the trunk against"
	// MsgProbeSiteOver: site, its outcome.
	MsgProbeSiteOver = "site %s is %s already"
	// MsgPutFailed: node, error.
	MsgPutFailed = "could not put the desired state of %s: %v"
	// MsgAndMore ends a list cut short: how many more.
	MsgAndMore = "and %d more"
)
