"""Reasons of the Events, history entries and conditions Rung writes, stated once.

Metrics, docs and tests import these names instead of repeating the strings, so a
rename cannot silently break a metric (a leaf module: it imports nothing).
"""

from __future__ import annotations

# Serving and the ladder
DEPLOYING = "Deploying"
DEPLOYED = "Deployed"
MODEL_REPLACED = "ModelReplaced"
LEVEL_CHANGED = "LevelChanged"
CAPABILITY_REFUSED = "CapabilityRefused"
REFUSED = "Refused"

# Rollout (level 2)
CANARY_STARTED = "CanaryStarted"
CANARY_READY = "CanaryReady"
CANARY_SUPERSEDED = "CanarySuperseded"
CANARY_ABORTED = "CanaryAborted"
CANARY_REMOVED = "CanaryRemoved"
CANARY_ABANDONED = "CanaryAbandoned"
STEP_ADVANCED = "StepAdvanced"
SHADOW_STARTED = "ShadowStarted"
"""The canary is ready and receives mirrored requests (responses discarded)."""
SHADOW_PASSED = "ShadowPassed"
"""The shadow stage passed: user traffic begins to move to the canary."""
SHADOW_FAILED = "ShadowFailed"
"""The canary failed the shadow stage: rejected before serving any user request."""
ANALYSIS_FAILED = "AnalysisFailed"
ANALYSIS_NO_DATA = "AnalysisNoData"
ANALYSIS_ERROR = "AnalysisError"
ERROR_LIMIT_REACHED = "ConsecutiveErrorLimitReached"
INVALID_MEASUREMENT = "InvalidMeasurement"
FAILURE_LIMIT_REACHED = "FailureLimitReached"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
AWAITING_APPROVAL = "AwaitingApproval"
APPROVED = "Approved"
PROMOTING = "Promoting"
PROMOTED = "Promoted"
ROLLING_BACK = "RollingBack"
ROLLED_BACK = "RolledBack"

# Day-2 commands (rung promote | abort | retry | undo | pause | resume)
PROMOTED_BY_USER = "PromotedByUser"
STEP_SKIPPED = "StepSkipped"
ABORTED = "Aborted"
RETRIED = "Retried"
UNDONE = "Undone"
PAUSED = "PausedByUser"
RESUMED = "Resumed"
INVALID_COMMAND = "InvalidCommand"

# Git write-back (spec.gitops)
GIT_COMMITTED = "GitCommitted"
GIT_IN_SYNC = "GitInSync"
GIT_WRITE_FAILED = "GitWriteFailed"

# Applying objects, reconciling
RECONCILE_FAILED = "ReconcileFailed"
APPLY_FAILED = "ApplyFailed"
APPLY_REFUSED = "ApplyRefused"
FAIL_SAFE_ROLLBACK = "FailSafeRollback"
"""A canary rolled back because reconciling its object kept failing (rung.plan.fail_safe)."""

# Retraining (level 3)
RETRAINING_STARTED = "RetrainingStarted"
RETRAINING_SUCCEEDED = "RetrainingSucceeded"
RETRAINING_FAILED = "RetrainingFailed"
RETRAINED_MODEL_RECEIVED = "RetrainedModelReceived"
"""A retraining run handed its model back (spec.model.data.trainingRun names the run)."""
RETRAINING_LAUNCH_FAILED = "RetrainingLaunchFailed"

ROLLOUT_OUTCOMES: dict[str, str] = {
    PROMOTED: "promoted",
    ROLLED_BACK: "rolled-back",
    CANARY_REMOVED: "aborted",
}
"""Event reason -> `outcome` label of the rung_rollouts_total metric."""
RETRAINING_OUTCOMES: dict[str, str] = {
    RETRAINING_SUCCEEDED: "succeeded",
    RETRAINING_FAILED: "failed",
}
"""Event reason -> `outcome` label of the rung_retraining_runs_total metric."""
