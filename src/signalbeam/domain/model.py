"""Status values shared by every layer; stored by value, so add but never rename."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user may do in their tenant."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    def allows(self, needed: Role) -> bool:
        """True when this role is at least as powerful as `needed`."""
        order = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
        return order.index(self) >= order.index(needed)


class Presence(StrEnum):
    """Whether a device is talking to the control plane."""

    NEW = "new"
    ONLINE = "online"
    OFFLINE = "offline"
    DECOMMISSIONED = "decommissioned"


class GroupKind(StrEnum):
    """Static groups list their members; dynamic groups match a selector."""

    STATIC = "static"
    DYNAMIC = "dynamic"


class ApplyStatus(StrEnum):
    """Where a device stands with its desired bundle; reported by the agent, stored by value."""

    IDLE = "idle"  # nothing desired yet
    APPLYING = "applying"  # fetching, starting or waiting for health checks
    RUNNING = "running"  # the desired bundle runs and is healthy
    DEGRADED = "degraded"  # the desired bundle was applied, but a unit is crashing or unhealthy
    FAILED = "failed"  # the desired bundle could not be applied; the last good one runs


class DesiredKind(StrEnum):
    """What a desired-state document asks of the device (its `kind`)."""

    BUNDLE = "bundle"  # run this signed bundle version
    DRAINED = "drained"  # run nothing: stop every unit (the device was drained)


class EventType(StrEnum):
    """Kinds of activity records; append-only, add but never rename."""

    DEVICE_REGISTERED = "device.registered"
    DEVICE_CREDENTIAL_ROTATED = "device.credential_rotated"
    DEVICE_ONLINE = "device.online"
    DEVICE_OFFLINE = "device.offline"
    DEVICE_LABELS_CHANGED = "device.labels_changed"
    DEVICE_GROUPS_CHANGED = "device.groups_changed"
    DEVICE_DECOMMISSIONED = "device.decommissioned"
    DEVICE_DESIRED_STATE_CHANGED = "device.desired_state_changed"
    DEVICE_SAMPLES_DROPPED = "device.samples_dropped"
    GROUP_CREATED = "group.created"
    GROUP_DELETED = "group.deleted"
    ENROLLMENT_TOKEN_CREATED = "enrollment_token.created"  # noqa: S105 - an event name
    ENROLLMENT_TOKEN_REVOKED = "enrollment_token.revoked"  # noqa: S105 - an event name
    USER_CREATED = "user.created"
    API_TOKEN_CREATED = "api_token.created"  # noqa: S105 - an event name
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 - an event name
    BUNDLE_PUSHED = "bundle.pushed"
    ARTIFACT_PUSHED = "artifact.pushed"
    ARTIFACT_REMOVED = "artifact.removed"
    BUNDLE_SIGNED = "bundle.signed"
    SIGNING_KEY_REGISTERED = "signing_key.registered"
    SIGNING_POLICY_CHANGED = "signing_policy.changed"
    ROLLOUT_CREATED = "rollout.created"
    # The engine's own records; the values match `RolloutEventType` in domain/rollout_state.py.
    ROLLOUT_WAVE_STARTED = "rollout.wave_started"
    ROLLOUT_DEVICE_SUCCEEDED = "rollout.device_succeeded"
    ROLLOUT_DEVICE_FAILED = "rollout.device_failed"
    ROLLOUT_DEVICE_RETRYING = "rollout.device_retrying"
    ROLLOUT_DEVICE_SKIPPED = "rollout.device_skipped"
    ROLLOUT_HALTED = "rollout.halted"
    ROLLOUT_PAUSED = "rollout.paused"
    ROLLOUT_RESUMED = "rollout.resumed"
    ROLLOUT_CANCELLED = "rollout.cancelled"
    ROLLOUT_ROLLED_BACK = "rollout.rolled_back"
    ROLLOUT_COMPLETED = "rollout.completed"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_REFUSED = "session.refused"
    REMOTE_ACCESS_CHANGED = "remote_access.changed"
    DEVICE_CORDONED = "device.cordoned"
    DEVICE_UNCORDONED = "device.uncordoned"
    DEVICE_UNIT_RESTARTED = "device.unit_restarted"
    DEVICE_AGENT_RESTARTED = "device.agent_restarted"
    DEVICE_REBOOT_REQUESTED = "device.reboot_requested"
    DEVICE_REBOOTED = "device.rebooted"
    DEVICE_DRAINED = "device.drained"
    DEVICE_ACTION_FAILED = "device.action_failed"
    ALERT_RULE_CHANGED = "alert_rule.changed"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_REOPENED = "incident.reopened"
    INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
    INCIDENT_RESOLVED = "incident.resolved"
    DEVICE_METRIC_ABOVE = "device.metric_above"
    DEVICE_METRIC_NORMAL = "device.metric_normal"
    WEBHOOK_CHANGED = "webhook.changed"
    CONFIG_CHANGED = "config.changed"
