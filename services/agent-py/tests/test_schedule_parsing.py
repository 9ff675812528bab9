"""``agent schedule``: what its arguments become (no server: the Schedule object it would send)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from agent.cli import build_parser
from agent.ingest.schedule import DEFAULT_SCHEDULE_ID, build_schedule, document_set
from agent.ingest.types import IngestInput
from agent.queues import AGENT_TASK_QUEUE


def test_create_takes_an_interval_or_a_cron_and_a_catchup_window(tmp_path: Path) -> None:
    args = build_parser().parse_args(["schedule", "create", str(tmp_path), "--every", "24h", "--catchup-window", "15m"])
    assert (args.id, args.every, args.catchup_window, args.cron) == (
        DEFAULT_SCHEDULE_ID,
        timedelta(hours=24),
        timedelta(minutes=15),
        None,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["schedule", "create", str(tmp_path), "--every", "1h", "--cron", "0 * * * *"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["schedule", "create", str(tmp_path), "--every", "soon"])


def test_files_stay_files_and_directories_are_listed_by_the_worker_at_each_run(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A")
    files, directories = document_set([str(tmp_path / "a.md"), str(tmp_path), str(tmp_path)])
    assert (files, directories) == ([str(tmp_path / "a.md")], [str(tmp_path)])


def test_the_schedule_runs_the_ingestion_workflow_skipping_overlaps() -> None:
    request = IngestInput(paths=[], directories=["/docs"])
    schedule = build_schedule(
        "kb", request, every=None, cron=None, catchup_window=timedelta(minutes=10), paused=True, note="why"
    )
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == ("IngestWorkflow", "kb", AGENT_TASK_QUEUE)
    assert list(action.args) == [request]
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == timedelta(minutes=10)
    assert [i.every for i in schedule.spec.intervals] == [timedelta(hours=1)]  # the default
    assert (schedule.state.paused, schedule.state.note) == (True, "why")
    cron = build_schedule("kb", request, every=None, cron="0 3 * * *", catchup_window=timedelta(minutes=1))
    assert list(cron.spec.cron_expressions) == ["0 3 * * *"] and not cron.spec.intervals


async def test_the_worker_lists_a_directory_at_run_time_and_names_one_it_cannot_read(tmp_path: Path) -> None:
    from temporalio.exceptions import ApplicationError

    from agent.ingest.activities import IngestActivities

    (tmp_path / "sub").mkdir()
    for name in ("b.md", "a.txt", "sub/c.pdf", "notes.docx"):
        (tmp_path / name).write_text("x")
    activities = IngestActivities(blobs=None, client=None)  # type: ignore[arg-type] # listing needs neither
    assert await activities.list_documents([str(tmp_path), str(tmp_path / "sub")]) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.md"),
        str(tmp_path / "sub" / "c.pdf"),
    ]
    with pytest.raises(ApplicationError, match="is not a directory the agent worker can read") as refused:
        await activities.list_documents([str(tmp_path / "missing")])
    assert refused.value.non_retryable
