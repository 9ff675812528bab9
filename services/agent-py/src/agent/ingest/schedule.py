"""``agent schedule``: a Temporal Schedule that re-ingests a document set, not a cron job outside.

    agent schedule create PATH... [--id ID] [--every 1h | --cron EXPR] [--catchup-window 10m]
                                  [--collection kb] [--paused] [--note TEXT] [--replace]
    agent schedule describe [--id ID] [--json]
    agent schedule pause|unpause [--id ID] [--note TEXT]
    agent schedule trigger [--id ID] [--wait]
    agent schedule delete [--id ID]

The schedule's action is IngestWorkflow itself (workflow ids ``<schedule id>-<time>``). Files are
named as they are and directories are listed by the worker at each run (``IngestInput.directories``),
so documents added to a folder are picked up; every path must be readable by the agent worker (on
a dev stack, this machine; in a cluster, a volume mounted at the same path, see the chart's
``reingestSchedule`` values). Overlap policy SKIP: a run that finds the previous one still going
is skipped, never queued; runs missed while the server was down are made up only within the
catch-up window. Unchanged documents cost nothing: IngestWorkflow skips a document whose content
hash its last ingestion recorded (no extraction, embedding or index call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from agent.arguments import duration
from agent.chat.client import ChatError
from agent.ingest.command import render, summarise
from agent.ingest.types import IngestInput, IngestResult
from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.ingest import IngestWorkflow, input_problems
from nexus_contracts.retrieval import DEFAULT_ENDPOINT as RETRIEVAL_ENDPOINT
from workerkit import connect
from workerkit.errors import root_message

DEFAULT_SCHEDULE_ID = "reingest-knowledge-base"
DEFAULT_EVERY = timedelta(hours=1)
DEFAULT_CATCHUP_WINDOW = timedelta(minutes=10)
NAMESPACE = "agents"
TRIGGER_SEEN_S = 60.0
"""How long ``trigger --wait`` waits for the server to start (or skip) the triggered run."""


def document_set(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files, directories), absolute: as the worker will read them at every run."""
    files: list[str] = []
    directories: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        (directories if path.is_dir() else files).append(str(path))
    return list(dict.fromkeys(files)), list(dict.fromkeys(directories))


def build_schedule(
    schedule_id: str,
    request: IngestInput,
    *,
    every: timedelta | None,
    cron: str | None,
    catchup_window: timedelta,
    paused: bool = False,
    note: str = "",
) -> Schedule:
    spec = (
        ScheduleSpec(cron_expressions=[cron])
        if cron
        else ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every or DEFAULT_EVERY)])
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(IngestWorkflow.run, request, id=schedule_id, task_queue=AGENT_TASK_QUEUE),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup_window),
        state=ScheduleState(paused=paused, note=note or None),
    )


class Schedules:
    """The schedule commands, with errors a person can act on (:class:`ChatError`)."""

    def __init__(self, client: Client, console: Console) -> None:
        self._client = client
        self._console = console

    async def create(self, schedule_id: str, schedule: Schedule, *, replace: bool) -> int:
        try:
            await self._client.create_schedule(schedule_id, schedule)
            verb = "created"
        except ScheduleAlreadyRunningError:
            if not replace:
                raise ChatError(
                    f"a schedule with id {schedule_id} exists already; describe it, or pass --replace to change it",
                    4,
                ) from None

            def replaced(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await self._handle(schedule_id).update(replaced)
            verb = "replaced"
        self._console.print(f"schedule {schedule_id} {verb}", highlight=False)
        return await self.describe(schedule_id, as_json=False)

    def _handle(self, schedule_id: str) -> ScheduleHandle:
        return self._client.get_schedule_handle(schedule_id)

    async def _describe(self, schedule_id: str) -> ScheduleDescription:
        try:
            return await self._handle(schedule_id).describe()
        except RPCError as err:
            raise _error(err, schedule_id) from None

    async def describe(self, schedule_id: str, *, as_json: bool) -> int:
        description = await self._describe(schedule_id)
        view = await self._view(description)
        if as_json:
            self._console.print_json(json.dumps(view))
            return 0
        for key, value in view.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            self._console.print(f"{key:22} {shown if shown not in ('', None) else '-'}", highlight=False)
        return 0

    async def _view(self, description: ScheduleDescription) -> dict[str, Any]:
        schedule, info = description.schedule, description.info
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        [request] = await self._client.data_converter.decode(list(action.args), [IngestInput])
        spec = schedule.spec
        return {
            "id": description.id,
            "every": [str(i.every) for i in spec.intervals],
            "cron": list(spec.cron_expressions),
            "paused": schedule.state.paused,
            "note": schedule.state.note or "",
            "overlap": schedule.policy.overlap.name,
            "catchup_window": str(schedule.policy.catchup_window),
            "collection": request.collection,
            "files": request.paths,
            "directories": request.directories,
            "actions": info.num_actions,
            "skipped_overlap": info.num_actions_skipped_overlap,
            "missed_catchup_window": info.num_actions_missed_catchup_window,
            "running": [_workflow_id(a) for a in info.running_actions],
            "recent": [f"{_workflow_id(r.action)} at {r.started_at:%Y-%m-%d %H:%M:%S}" for r in info.recent_actions],
            "next": [f"{t:%Y-%m-%d %H:%M:%S} UTC" for t in info.next_action_times[:3]],
        }

    async def pause(self, schedule_id: str, note: str, *, paused: bool) -> int:
        handle = self._handle(schedule_id)
        try:
            await (handle.pause(note=note or None) if paused else handle.unpause(note=note or None))
        except RPCError as err:
            raise _error(err, schedule_id) from None
        self._console.print(f"schedule {schedule_id} {'paused' if paused else 'unpaused'}", highlight=False)
        return 0

    async def delete(self, schedule_id: str) -> int:
        try:
            await self._handle(schedule_id).delete()
        except RPCError as err:
            raise _error(err, schedule_id) from None
        # Runs already started finish; their results stay in the namespace's history.
        self._console.print(f"schedule {schedule_id} deleted", highlight=False)
        return 0

    async def trigger(self, schedule_id: str, *, wait: bool) -> int:
        """Start one run now (the schedule's overlap policy applies: skipped if one is running);
        ``wait``: until that run ends, then print its outcome like ``agent ingest``."""
        before = (await self._describe(schedule_id)).info
        try:
            await self._handle(schedule_id).trigger()
        except RPCError as err:
            raise _error(err, schedule_id) from None
        if not wait:
            self._console.print(f"schedule {schedule_id} triggered", highlight=False)
            return 0
        deadline = time.monotonic() + TRIGGER_SEEN_S
        while time.monotonic() < deadline:
            info = (await self._describe(schedule_id)).info
            if info.num_actions_skipped_overlap > before.num_actions_skipped_overlap:
                running = ", ".join(_workflow_id(a) for a in info.running_actions)
                self._console.print(f"skipped: the previous run ({running}) is still going (overlap policy skip)")
                return 0
            if info.num_actions > before.num_actions and info.recent_actions:
                return await self._await_run(_workflow_id(info.recent_actions[-1].action))
            await asyncio.sleep(0.5)
        raise ChatError(f"schedule {schedule_id} was triggered but no run started within {TRIGGER_SEEN_S:.0f} s", 1)

    async def _await_run(self, workflow_id: str) -> int:
        self._console.print(f"running {workflow_id}", highlight=False)
        handle = self._client.get_workflow_handle_for(IngestWorkflow.run, workflow_id)
        try:
            result: IngestResult = await handle.result()
        except WorkflowFailureError as err:
            raise ChatError(f"ingestion {workflow_id} failed: {root_message(err)}", 1) from None
        render(self._console, result, workflow_id)
        summarise(self._console, [result])
        return 1 if result.count("failed") else 0


def _workflow_id(execution: Any) -> str:
    return execution.workflow_id if isinstance(execution, ScheduleActionExecutionStartWorkflow) else "?"


def _error(err: RPCError, schedule_id: str) -> ChatError:
    if err.status == RPCStatusCode.NOT_FOUND:
        return ChatError(f"there is no schedule {schedule_id}; create it with `agent schedule create PATH...`", 3)
    return ChatError(f"the Temporal server refused the request: {err.message}", 1)


def interval(raw: str) -> timedelta:
    return timedelta(seconds=duration(raw))


async def run_schedule(args: argparse.Namespace, console: Console) -> int:
    schedules = Schedules(await connect(NAMESPACE), console)
    match args.schedule_command:
        case "create":
            files, directories = document_set(args.paths)
            request = IngestInput(
                paths=files,
                directories=directories,
                collection=args.collection,
                retrieval_endpoint=os.environ.get("AGENT_RETRIEVAL_ENDPOINT", RETRIEVAL_ENDPOINT),
            )
            if problems := input_problems(request):
                raise ChatError("invalid ingestion request: " + "; ".join(problems), 4)
            schedule = build_schedule(
                args.id,
                request,
                every=args.every,
                cron=args.cron,
                catchup_window=args.catchup_window,
                paused=args.paused,
                note=args.note,
            )
            return await schedules.create(args.id, schedule, replace=args.replace)
        case "describe":
            return await schedules.describe(args.id, as_json=args.json)
        case "pause" | "unpause":
            return await schedules.pause(args.id, args.note, paused=args.schedule_command == "pause")
        case "trigger":
            return await schedules.trigger(args.id, wait=args.wait)
        case "delete":
            return await schedules.delete(args.id)
    raise AssertionError(args.schedule_command)


def add_schedule_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The ``schedule`` command's parser (the caller sets its handler)."""
    parser = commands.add_parser("schedule", help="a Temporal Schedule that re-ingests a document set")
    sub = parser.add_subparsers(dest="schedule_command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        one = sub.add_parser(name, help=help_text)
        one.add_argument("--id", default=DEFAULT_SCHEDULE_ID, help=f"schedule id (default {DEFAULT_SCHEDULE_ID})")
        return one

    create = command("create", "create (or with --replace, change) the schedule")
    create.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories listed at every run")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--every", type=interval, default=None, help="interval between runs (default 1h)")
    when.add_argument("--cron", help="a cron expression instead of --every (UTC)")
    create.add_argument(
        "--catchup-window",
        type=interval,
        default=DEFAULT_CATCHUP_WINDOW,
        help="runs missed while the server was down are made up only this long after (default 10m)",
    )
    create.add_argument("--collection", default="kb", help="collection to index into (default kb)")
    create.add_argument("--paused", action="store_true", help="create it paused (trigger still runs it)")
    create.add_argument("--note", default="", help="why (shown by describe)")
    create.add_argument("--replace", action="store_true", help="change the schedule if it exists")
    describe = command("describe", "spec, state, document set, recent and next runs")
    describe.add_argument("--json", action="store_true", help="one JSON document")
    for name in ("pause", "unpause"):
        command(name, f"{name} the schedule").add_argument("--note", default="", help="why (shown by describe)")
    command("trigger", "start one run now (skipped if one is running)").add_argument(
        "--wait", action="store_true", help="wait for the run and print each document's outcome"
    )
    command("delete", "delete the schedule (runs already started finish)")
    return parser


__all__ = ["DEFAULT_SCHEDULE_ID", "Schedules", "add_schedule_parser", "build_schedule", "run_schedule"]
