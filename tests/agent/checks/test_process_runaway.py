"""process.runaway judged on recorded process samples."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.process_runaway import ProcessRunaway
from agent.facts.models import Unavailable
from agent.facts.software.models import ProcessesFacts, ProcessInfo
from remdiag.vocabulary import CheckStatus

CHECK = ProcessRunaway()
DEFAULTS = CHECK.thresholds()
GIB = 1024**3
RAM = 16 * GIB


def proc(name: str, pid: int, cpu: float | None = 1.0, rss_gib: float = 0.5) -> ProcessInfo:
    rss = int(rss_gib * GIB)
    return ProcessInfo(pid, name, "alice", cpu, rss, 100.0 * rss / RAM)


def sample(*processes: ProcessInfo, cores: int = 4, window: float | None = 120.0) -> ProcessesFacts:
    by_cpu = sorted(
        (p for p in processes if p.cpu_percent is not None),
        key=lambda p: p.cpu_percent or 0.0,
        reverse=True,
    )
    return ProcessesFacts(
        top_by_cpu=tuple(by_cpu) if window is not None else (),
        top_by_memory=tuple(sorted(processes, key=lambda p: p.rss_bytes, reverse=True)),
        process_count=len(processes) + 200,
        logical_cores=cores,
        memory_total_bytes=RAM,
        cpu_window_seconds=window,
    )


CALM = sample(proc("firefox", 100, cpu=40.0, rss_gib=2), proc("code", 200, cpu=10.0))
SPINNING = sample(proc("OneDrive.exe", 300, cpu=240.0), proc("code", 200))  # 60% of 4 cores
PINNED = sample(proc("miner", 400, cpu=380.0), proc("code", 200))  # 95% of 4 cores
BLOATED = sample(proc("java", 500, cpu=5.0, rss_gib=11))  # 69% of RAM
RECORDED = [CALM, SPINNING, PINNED, BLOATED]


def judged(facts: ProcessesFacts, overrides: dict[str, object] | None = None) -> Outcome:
    outcome = CHECK.evaluate(facts, CHECK.thresholds(overrides))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in outcome.values} <= declared
    return outcome


def test_calm_machine_is_ok_and_names_the_busiest_and_largest() -> None:
    outcome = judged(CALM)
    assert outcome.status is CheckStatus.OK
    assert outcome.summary == (
        "firefox (pid 100, alice) used 10% of the CPU; "
        "firefox (pid 100, alice) holds 2.0 GiB (12% of RAM)"
    )
    values = {v.name: v.value for v in outcome.values}
    assert values == {
        "processes": 202,
        "cpu_percent": 10.0,
        "cpu_process": "firefox (pid 100, alice)",
        "rss_percent": 12.5,
        "rss_mib": 2048.0,
        "memory_process": "firefox (pid 100, alice)",
    }


def test_one_process_using_most_of_the_machine_warns_and_is_named() -> None:
    outcome = judged(SPINNING)
    assert outcome.status is CheckStatus.WARNING
    assert (
        outcome.summary == "OneDrive.exe (pid 300, alice) used 60% of the CPU (warning above 50%)"
    )


def test_one_process_pinning_every_core_is_critical() -> None:
    outcome = judged(PINNED)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == "miner (pid 400, alice) used 95% of the CPU (critical above 90%)"


def test_a_process_holding_most_of_the_ram_is_critical() -> None:
    outcome = judged(BLOATED)
    assert outcome.status is CheckStatus.CRITICAL
    assert (
        outcome.summary
        == "java (pid 500, alice) holds 11.0 GiB (69% of RAM) (critical above 60% of RAM)"
    )


def test_an_absolute_memory_limit_when_configured() -> None:
    facts = sample(proc("chrome", 600, rss_gib=3))
    assert judged(facts).status is CheckStatus.OK
    outcome = judged(facts, {"max_rss_mib_warning": 2048})
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("(warning above 2048 MiB)")
    both = judged(facts, {"max_rss_mib_warning": 1024, "max_rss_percent_warning": 10})
    assert both.summary.endswith("(warning above 10% of RAM, above 1024 MiB)")


def test_single_core_machine_judges_the_share_of_its_one_core() -> None:
    outcome = judged(sample(proc("updater", 700, cpu=97.0), cores=1))
    assert outcome.status is CheckStatus.CRITICAL


def test_ignored_processes_are_not_judged() -> None:
    outcome = judged(PINNED, {"ignore_processes": ["MINER"]})
    assert outcome.status is CheckStatus.OK
    assert "miner" not in outcome.summary


def test_first_sample_judges_memory_and_says_cpu_comes_next() -> None:
    outcome = judged(sample(proc("java", 500, cpu=None, rss_gib=6), window=None))
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("; CPU use is measured from the next run on")
    assert "cpu_percent" not in {v.name for v in outcome.values}


def test_no_readable_process_is_unknown() -> None:
    assert judged(sample()).status is CheckStatus.UNKNOWN
    only_ignored = judged(sample(proc("java", 1)), {"ignore_processes": ["java"]})
    assert only_ignored.status is CheckStatus.UNKNOWN
    assert only_ignored.summary == "no process could be read"


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    outcome = CHECK.judge(Unavailable("cannot list processes: Permission denied"), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == "could not measure: cannot list processes: Permission denied"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_cpu_percent_warning": 95},  # above critical (90)
        {"max_cpu_percent_critical": 101},
        {"max_rss_percent_warning": 70},  # above critical (60)
        {"max_rss_mib_warning": 4096, "max_rss_mib_critical": 2048},
        {"max_rss_mib_warning": -1},
        {"ignore_processes": [""]},
        {"ignore_processes": ["x"] * 65},
        {"max_cpu_percent": 50},  # unknown field
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)
