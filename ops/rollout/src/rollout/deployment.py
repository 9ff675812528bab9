"""One Worker Deployment on a Temporal server: read its routing and versions, move traffic.

Everything goes through the raw ``workflow_service`` calls (DescribeWorkerDeployment,
SetWorkerDeploymentRampingVersion, SetWorkerDeploymentCurrentVersion, ...): the Python SDK has no
higher-level client for them. Versions are named by build id within the deployment. Each change
carries the conflict token of the description it was decided on, so two operators acting at once
cannot overwrite each other's step unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.deployment.v1 import WorkerDeploymentInfo, WorkerDeploymentVersion
from temporalio.api.enums.v1 import TaskQueueType, VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentResponse,
    DescribeWorkerDeploymentVersionRequest,
    DescribeWorkerDeploymentVersionResponse,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from rollout.errors import RolloutError
from workerkit.connect import connect_without_codec
from workerkit.errors import TemporalUnreachable

IDENTITY = "rollout-cli"
T = TypeVar("T")


async def connect(namespace: str, address: str | None = None) -> Client:
    """A client from Temporal's env config; no payload codec, since no payload is read."""
    try:
        return await connect_without_codec(namespace, address)
    except TemporalUnreachable as err:
        raise RolloutError(str(err)) from None


def _short_name(enum_name: str, prefix: str) -> str:
    """A protobuf enum value's name without its enum's prefix, in lower case."""
    return enum_name.removeprefix(prefix).lower()


def version_status(value: WorkerDeploymentVersionStatus.ValueType) -> str:
    return _short_name(WorkerDeploymentVersionStatus.Name(value), "WORKER_DEPLOYMENT_VERSION_STATUS_")


def drainage_status(value: VersionDrainageStatus.ValueType) -> str | None:
    name = _short_name(VersionDrainageStatus.Name(value), "VERSION_DRAINAGE_STATUS_")
    return None if name == "unspecified" else name


@dataclass(frozen=True)
class Routing:
    """Where new workflows go: the current version, and a percentage to the ramping one."""

    current: str | None
    ramping: str | None
    percentage: float

    @staticmethod
    def of(info: WorkerDeploymentInfo) -> Routing:
        config = info.routing_config
        ramping = config.ramping_deployment_version.build_id or None
        return Routing(
            current=config.current_deployment_version.build_id or None,
            ramping=ramping,
            percentage=round(config.ramping_version_percentage, 2) if ramping else 0.0,
        )

    def describe(self) -> str:
        current = self.current or "unversioned workers"
        if not self.ramping:
            return f"current {current}, nothing ramping"
        return f"current {current}, ramping {self.ramping} at {self.percentage:g}%"


@dataclass
class VersionState:
    build_id: str
    status: str
    drainage: str | None
    ramp_percentage: float
    task_queues: list[str] = field(default_factory=list)
    pollers: int = 0
    # Tasks waiting on the version's queues and the oldest one's age; None if the server has no stats.
    backlog: int | None = None
    backlog_age_s: float = 0.0
    running: int = 0
    # Failure figures over the window, from Prometheus or from visibility (``error_source``).
    failed: float | None = None
    closed: float | None = None
    errors_per_min: float | None = None
    error_source: str = ""
    last_current_time: datetime | None = None

    @property
    def error_rate(self) -> float | None:
        if self.failed is None or not self.closed:
            return None
        return self.failed / self.closed


@dataclass
class DeploymentState:
    namespace: str
    name: str
    routing: Routing
    versions: list[VersionState]

    def version(self, build_id: str) -> VersionState | None:
        return next((v for v in self.versions if v.build_id == build_id), None)


@dataclass(frozen=True)
class Change:
    """What a command changed, for the confirmation the operator reads."""

    action: str
    before: Routing
    after: Routing

    def describe(self) -> str:
        return f"{self.action}: was {self.before.describe()}; now {self.after.describe()}"


def search_value(deployment: str, build_id: str) -> str:
    """The value of the ``TemporalWorkerDeploymentVersion`` search attribute for a version."""
    return f"{deployment}:{build_id}"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Deployment:
    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.namespace = client.namespace

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except RPCError as err:
            raise self._failure(err, what) from None

    def _failure(self, err: RPCError, what: str) -> RolloutError:
        message = err.message
        if err.status == RPCStatusCode.UNIMPLEMENTED or (
            err.status == RPCStatusCode.PERMISSION_DENIED and "disabled" in message.lower()
        ):
            return RolloutError(
                f"cannot {what}: the server does not offer Worker Deployment Versioning "
                f"(it needs Temporal server 1.28 or later with deployment versions enabled): {message}"
            )
        if (
            err.status == RPCStatusCode.NOT_FOUND
            and "deployment" in message.lower()
            and "version" not in message.lower()
        ):
            return RolloutError(
                f"cannot {what}: deployment {self.name!r} does not exist in namespace {self.namespace!r}; "
                "start a worker with TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID set first"
            )
        if err.status == RPCStatusCode.ABORTED or "conflict" in message.lower():
            return RolloutError(
                f"cannot {what}: someone else changed the deployment meanwhile; check `status` and retry"
            )
        if "poller" in message.lower():
            return RolloutError(
                f"cannot {what}: the server reports no pollers on the version ({message}); "
                "start its workers and wait until `status` shows them polling"
            )
        return RolloutError(f"cannot {what}: {message or err.status.name}")

    async def describe(self) -> DescribeWorkerDeploymentResponse:
        return await self._call(
            f"describe deployment {self.name!r}",
            self.client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=self.namespace, deployment_name=self.name)
            ),
        )

    async def routing(self) -> Routing:
        return Routing.of((await self.describe()).worker_deployment_info)

    async def _pollers(self, build_id: str, queues: list[tuple[str, TaskQueueType.ValueType]]) -> int:
        """Distinct worker identities polling any of the version's queues as this version."""
        identities: set[str] = set()
        for name, kind in queues:
            described = await self._call(
                f"describe task queue {name!r}",
                self.client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.namespace, task_queue=TaskQueue(name=name), task_queue_type=kind
                    )
                ),
            )
            identities.update(
                p.identity
                for p in described.pollers
                if p.deployment_options.deployment_name == self.name and p.deployment_options.build_id == build_id
            )
        return len(identities)

    async def _describe_version(self, build_id: str, *, stats: bool = False) -> DescribeWorkerDeploymentVersionResponse:
        request = DescribeWorkerDeploymentVersionRequest(
            namespace=self.namespace,
            deployment_version=WorkerDeploymentVersion(deployment_name=self.name, build_id=build_id),
            report_task_queue_stats=stats,
        )
        try:
            return await self.client.workflow_service.describe_worker_deployment_version(request)
        except RPCError as err:
            if stats and err.status == RPCStatusCode.NOT_FOUND and "task queue" in err.message:
                # Server 1.32 refuses the statistics when one of the version's queues has a type
                # nothing polls as that version (the agent queue's local activities register
                # an activity queue); the version itself is fine, so describe it without them.
                return await self._describe_version(build_id)
            raise self._failure(err, f"describe version {build_id!r}") from None

    async def _count(self, query: str) -> int:
        return (await self._call("count workflows in visibility", self.client.count_workflows(query))).count

    async def _version_state(self, summary: WorkerDeploymentInfo.WorkerDeploymentVersionSummary) -> VersionState:
        build_id = summary.deployment_version.build_id
        described = await self._describe_version(build_id, stats=True)
        info = described.worker_deployment_version_info
        queues = [(q.name, q.type) for q in described.version_task_queues]
        with_stats = [q.stats for q in described.version_task_queues if q.HasField("stats")]
        state = VersionState(
            build_id=build_id,
            status=version_status(info.status),
            drainage=drainage_status(info.drainage_info.status),
            ramp_percentage=round(info.ramp_percentage, 2),
            task_queues=sorted({f"{name} ({_queue_kind(kind)})" for name, kind in queues}),
            pollers=await self._pollers(build_id, queues),
            backlog=sum(s.approximate_backlog_count for s in with_stats) if with_stats else None,
            backlog_age_s=max(
                (s.approximate_backlog_age.ToTimedelta().total_seconds() for s in with_stats), default=0.0
            ),
            running=await self._count(
                f"TemporalWorkerDeploymentVersion = {_quote(search_value(self.name, build_id))} "
                "AND ExecutionStatus = 'Running'"
            ),
            last_current_time=summary.last_current_time.ToDatetime(UTC)
            if summary.HasField("last_current_time")
            else None,
        )
        return state

    async def state(self) -> DeploymentState:
        info = (await self.describe()).worker_deployment_info
        versions = await asyncio.gather(*(self._version_state(s) for s in info.version_summaries))
        versions = sorted(versions, key=lambda v: _status_order(v.status))
        return DeploymentState(self.namespace, self.name, Routing.of(info), versions)

    async def visibility_errors(self, state: DeploymentState, window: timedelta) -> None:
        """Failed / closed workflows per version over ``window``: the fallback without Prometheus."""
        since = (datetime.now(UTC) - window).strftime("%Y-%m-%dT%H:%M:%SZ")
        for version in state.versions:
            scope = (
                f"TemporalWorkerDeploymentVersion = {_quote(search_value(self.name, version.build_id))} "
                f"AND CloseTime > '{since}'"
            )
            version.closed = await self._count(f"{scope} AND ExecutionStatus != 'Running'")
            version.failed = await self._count(f"{scope} AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated')")
            version.error_source = "visibility"

    def _known(self, info: WorkerDeploymentInfo, build_id: str) -> None:
        known = [s.deployment_version.build_id for s in info.version_summaries]
        if build_id not in known:
            raise RolloutError(
                f"version {build_id!r} is not part of deployment {self.name!r} (known: {', '.join(known) or 'none'}); "
                "start its workers with TEMPORAL_WORKER_BUILD_ID set to it, and they register it when they poll"
            )

    async def _require_pollers(self, build_id: str) -> None:
        described = await self._describe_version(build_id)
        queues = [(q.name, q.type) for q in described.version_task_queues]
        if not await self._pollers(build_id, queues):
            raise RolloutError(
                f"version {build_id!r} has no workers polling right now; start them (or wait for them to come up) "
                "before sending it traffic"
            )

    async def _change(self, action: str, build_id: str | None, apply: Callable[[bytes], Awaitable[object]]) -> Change:
        described = await self.describe()
        if build_id is not None:
            self._known(described.worker_deployment_info, build_id)
            await self._require_pollers(build_id)
        before = Routing.of(described.worker_deployment_info)
        await apply(described.conflict_token)
        return Change(action, before, await self.routing())

    async def ramp(self, build_id: str, percentage: float) -> Change:
        if not 0 <= percentage <= 100:
            raise RolloutError(f"the ramp percentage must be between 0 and 100, got {percentage:g}")
        routing = await self.routing()
        if build_id == routing.current:
            raise RolloutError(f"version {build_id!r} is already current; ramp another version, or `rollback`")

        def apply(token: bytes) -> Awaitable[object]:
            return self._set_ramping(build_id, percentage, token, f"ramp version {build_id!r} to {percentage:g}%")

        return await self._change(f"ramped {build_id} to {percentage:g}%", build_id, apply)

    async def promote(self, build_id: str) -> Change:
        def apply(token: bytes) -> Awaitable[object]:
            return self._set_current(build_id, token, f"make version {build_id!r} current")

        return await self._change(f"promoted {build_id} to current", build_id, apply)

    async def rollback(self) -> Change:
        """Stop a ramp if one runs; else make the version that was current before this one current again."""
        described = await self.describe()
        routing = Routing.of(described.worker_deployment_info)
        if routing.ramping:

            def unramp(token: bytes) -> Awaitable[object]:
                return self._set_ramping("", 0, token, f"stop ramping version {routing.ramping!r}")

            return await self._change(f"stopped the ramp of {routing.ramping}", None, unramp)
        previous = previous_current(described.worker_deployment_info)
        if previous is None:
            raise RolloutError(
                f"nothing to roll back in deployment {self.name!r}: no ramp runs and no other version was ever current "
                "(to send new workflows back to unversioned workers: temporal worker deployment set-current-version "
                f"--deployment-name {self.name} --unversioned)"
            )

        def restore(token: bytes) -> Awaitable[object]:
            return self._set_current(previous, token, f"make the previous version {previous!r} current again")

        return await self._change(f"rolled back to {previous}", previous, restore)

    async def exists(self) -> bool:
        """Whether any worker ever registered a version of the deployment (not on a first install)."""
        try:
            await self.client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=self.namespace, deployment_name=self.name)
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise self._failure(err, f"describe deployment {self.name!r}") from None
        return True

    async def retirement_blockers(self, keep: set[str]) -> list[str]:
        """Why the versions outside ``keep`` may not lose their workers yet, one phrase each: a
        version still routed to, or with workflows pinned to it still open, would strand them."""
        if not await self.exists():
            return []
        state = await self.state()
        blockers = []
        for version in state.versions:
            if version.build_id in keep:
                continue
            if version.status in ("current", "ramping"):
                blockers.append(f"version {version.build_id!r} is {version.status}")
            elif version.running or version.drainage == "draining":
                blockers.append(
                    f"version {version.build_id!r} still has {version.running} open pinned workflow(s) "
                    f"(drainage: {version.drainage or 'unknown'})"
                )
        return blockers

    async def wait_for_pollers(self, build_ids: list[str], timeout: timedelta) -> None:
        """Until every version of ``build_ids`` is known and polled (its pods came up), or a RolloutError."""
        deadline = asyncio.get_running_loop().time() + timeout.total_seconds()
        while True:
            missing = [b for b in build_ids if not await self._polled(b)]
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise RolloutError(
                    f"version(s) {', '.join(repr(b) for b in missing)} of deployment {self.name!r} had no workers "
                    f"polling after {timeout.total_seconds():g}s; check that their pods are ready"
                )
            await asyncio.sleep(2)

    async def _polled(self, build_id: str) -> bool:
        if not await self.exists():
            return False
        known = [
            s.deployment_version.build_id for s in (await self.describe()).worker_deployment_info.version_summaries
        ]
        if build_id not in known:
            return False
        described = await self._describe_version(build_id)
        return bool(await self._pollers(build_id, [(q.name, q.type) for q in described.version_task_queues]))

    async def apply(self, current: str, ramping: str | None, percentage: float) -> list[Change]:
        """Make the routing ``current`` plus ``ramping`` at ``percentage`` (none: no ramp), changing
        only what differs, so applying the same routing twice changes nothing."""
        changes = []
        routing = await self.routing()
        if routing.current != current:
            changes.append(await self.promote(current))
            routing = await self.routing()
        if ramping and (routing.ramping != ramping or routing.percentage != round(percentage, 2)):
            changes.append(await self.ramp(ramping, percentage))
        elif not ramping and routing.ramping:
            changes.append(await self.rollback())
        return changes

    def _target(self, build_id: str, token: bytes) -> dict[str, Any]:
        """The fields both routing changes share; an empty build id means unversioned / none."""
        return dict(
            namespace=self.namespace,
            deployment_name=self.name,
            build_id=build_id,
            conflict_token=token,
            identity=IDENTITY,
        )

    async def _set_ramping(self, build_id: str, percentage: float, token: bytes, what: str) -> object:
        request = SetWorkerDeploymentRampingVersionRequest(**self._target(build_id, token), percentage=percentage)
        return await self._call(what, self.client.workflow_service.set_worker_deployment_ramping_version(request))

    async def _set_current(self, build_id: str, token: bytes, what: str) -> object:
        request = SetWorkerDeploymentCurrentVersionRequest(**self._target(build_id, token))
        return await self._call(what, self.client.workflow_service.set_worker_deployment_current_version(request))


def previous_current(info: WorkerDeploymentInfo) -> str | None:
    """The version that stopped being current most recently (what a rollback returns to)."""
    current = info.routing_config.current_deployment_version.build_id
    candidates = [
        (s.last_current_time.ToDatetime(), s.deployment_version.build_id)
        for s in info.version_summaries
        if s.deployment_version.build_id != current and s.HasField("last_current_time")
    ]
    return max(candidates)[1] if candidates else None


_ORDER = ("current", "ramping", "draining", "inactive", "drained")


def _status_order(status: str) -> int:
    return _ORDER.index(status) if status in _ORDER else len(_ORDER)


def _queue_kind(kind: TaskQueueType.ValueType) -> str:
    return _short_name(TaskQueueType.Name(kind), "TASK_QUEUE_TYPE_")
