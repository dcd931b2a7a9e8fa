"""agent/app.py: policies from the collector reschedule the jobs they change, and the last one
is kept on disk and followed from the start."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from google.protobuf.struct_pb2 import Struct

from agent.app import Agent
from agent.config import AgentSettings
from agent.plan import PlannedCheck, PolicyEntry
from agent.saved_policy import POLICY_FILE, load_policy, save_policy
from remdiag.v1 import common_pb2
from tests.support import LOOPBACK_CHECKS

DISK = "disk.free_space"
MEMORY = "memory.pressure"
LISBON = "Europe/Lisbon"


def new_agent(state_dir: Path) -> Agent:
    return Agent(AgentSettings(state_dir=state_dir, checks=LOOPBACK_CHECKS))


def jobs(agent: Agent) -> dict[str, tuple[Any, str, PlannedCheck]]:
    """Each job's next run, trigger and planned check: what a reschedule would change."""
    return {
        job.id: (job.next_run_time, str(job.trigger), job.args[0])
        for job in agent._scheduler.get_jobs()
    }


def disk_policy(version: int, **check: Any) -> common_pb2.Policy:
    return common_pb2.Policy(
        version=version, checks=[common_pb2.CheckPolicy(check_id=DISK, **check)]
    )


async def test_a_policy_change_reschedules_only_the_jobs_it_changes(tmp_path: Path) -> None:
    agent = new_agent(tmp_path / "agent")
    # Paused: jobs get their next run times but none runs during the test.
    agent._scheduler.start(paused=True)
    try:
        agent._schedule(agent.plan)
        before = jobs(agent)
        assert set(before) == {p.check.id for p in agent.plan.checks}

        agent.apply_policy({DISK: PolicyEntry(interval_seconds=45)}, version=2)
        after = jobs(agent)
        disk = agent._scheduler.get_job(DISK)
        assert isinstance(disk.trigger, IntervalTrigger)
        assert disk.trigger.interval.total_seconds() == 45
        assert after[DISK][2].interval_seconds == 45
        # Every other job is exactly as it was: same next run, same trigger, same plan.
        assert {k: v for k, v in after.items() if k != DISK} == {
            k: v for k, v in before.items() if k != DISK
        }

        asked = datetime.now(UTC)
        agent.apply_policy({DISK: PolicyEntry(cron="0 2 * * 0", timezone=LISBON)}, version=3)
        disk = agent._scheduler.get_job(DISK)
        assert isinstance(disk.trigger, CronTrigger)
        # A cron job waits for its time: the next Sunday 02:00 in Lisbon, not now.
        cron_next = disk.next_run_time
        local = cron_next.astimezone(ZoneInfo(LISBON))
        assert (local.weekday(), local.hour, local.minute) == (6, 2, 0)
        assert asked < cron_next <= asked + timedelta(days=7)

        # The same policy again (as after every reconnect) changes nothing.
        unchanged = jobs(agent)
        agent.apply_policy({DISK: PolicyEntry(cron="0 2 * * 0", timezone=LISBON)}, version=3)
        assert jobs(agent) == unchanged

        # Thresholds alone: the cron job keeps its next run and gets the new thresholds.
        agent.apply_policy(
            {
                DISK: PolicyEntry(
                    cron="0 2 * * 0", timezone=LISBON, thresholds={"max_used_percent_warning": 70}
                )
            },
            version=4,
        )
        disk = agent._scheduler.get_job(DISK)
        assert disk.next_run_time == cron_next
        assert disk.args[0].thresholds.max_used_percent_warning == 70

        # Disabled by policy: its job goes, the others stay.
        agent.apply_policy({DISK: PolicyEntry(disabled=True)}, version=5)
        assert agent._scheduler.get_job(DISK) is None
        assert jobs(agent) == {k: v for k, v in before.items() if k != DISK}
        assert agent.policy_version == 5
    finally:
        agent._scheduler.shutdown(wait=False)


async def test_a_bad_cron_from_the_collector_keeps_the_previous_schedule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = new_agent(tmp_path / "agent")
    agent._scheduler.start(paused=True)
    try:
        agent._schedule(agent.plan)
        agent._on_policy_message(disk_policy(1, cron="15 3 * * *", timezone=LISBON))
        before = jobs(agent)
        caplog.set_level(logging.WARNING, logger="agent.app")
        agent._on_policy_message(disk_policy(2, cron="15 3 * * mon-", timezone=LISBON))
        agent._on_policy_message(disk_policy(3, cron="15 3 * * *", timezone="Europe/Atlantis"))
        assert jobs(agent) == before
        assert agent.policy_version == 3
        assert caplog.text.count(f"policy for {DISK} refused") == 2
        assert "Europe/Atlantis" in caplog.text
    finally:
        agent._scheduler.shutdown(wait=False)


def test_the_policy_is_kept_and_followed_at_start_before_any_connection(tmp_path: Path) -> None:
    state_dir = tmp_path / "agent"
    thresholds = Struct()
    thresholds.update({"max_used_percent_warning": 70})
    policy = common_pb2.Policy(
        version=7,
        checks=[
            common_pb2.CheckPolicy(
                check_id=DISK, cron="0 2 * * 0", timezone=LISBON, thresholds=thresholds
            ),
            common_pb2.CheckPolicy(check_id=MEMORY, disabled=True),
        ],
    )
    first = new_agent(state_dir)
    assert first.policy_version == 0
    first._on_policy_message(policy)
    assert load_policy(state_dir) == policy
    assert json.loads((state_dir / POLICY_FILE).read_text())["version"] == "7"

    # A new agent (a restart, the collector out of reach) follows it before connecting.
    again = new_agent(state_dir)
    assert again.policy_version == 7
    disk = next(p for p in again.plan.checks if p.check.id == DISK)
    assert (disk.cron, disk.timezone) == ("0 2 * * 0", LISBON)
    assert disk.thresholds.max_used_percent_warning == 70  # type: ignore[attr-defined]
    assert MEMORY not in {p.check.id for p in again.plan.checks}

    # A newer policy replaces the saved one.
    again._on_policy_message(disk_policy(8, interval_seconds=120))
    assert load_policy(state_dir) == disk_policy(8, interval_seconds=120)
    assert new_agent(state_dir).policy_version == 8


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": "x"}', b'{"checks": [{"nope": 1}]}', b"\xff\xfe", b"[]"],
)
def test_a_corrupt_saved_policy_is_logged_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    state_dir = tmp_path / "agent"
    state_dir.mkdir()
    (state_dir / POLICY_FILE).write_bytes(content)
    caplog.set_level(logging.WARNING, logger="agent.saved_policy")
    agent = new_agent(state_dir)
    assert agent.policy_version == 0
    assert agent.plan == new_agent(tmp_path / "fresh").plan
    assert "saved policy" in caplog.text and "ignored" in caplog.text
    # The next policy from the collector replaces it.
    agent._on_policy_message(disk_policy(2, interval_seconds=90))
    assert load_policy(state_dir) == disk_policy(2, interval_seconds=90)


def test_save_policy_is_owner_only_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_policy(tmp_path, disk_policy(1, cron="0 * * * *"))
    save_policy(tmp_path, disk_policy(2, cron="30 * * * *"))
    assert [p.name for p in tmp_path.iterdir()] == [POLICY_FILE]
    assert (tmp_path / POLICY_FILE).stat().st_mode & 0o777 == 0o600
    assert load_policy(tmp_path) == disk_policy(2, cron="30 * * * *")
