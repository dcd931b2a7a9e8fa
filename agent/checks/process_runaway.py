"""process.runaway: names the one program hogging the processor or the memory."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import Unavailable
from agent.facts.software.models import ProcessesFacts, ProcessInfo
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus

MIB = 1024**2
GIB = 1024**3

ProcessName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class ProcessRunawayThresholds(Thresholds):
    max_cpu_percent_warning: float = Field(default=50, ge=0, le=100)
    """Share of the WHOLE machine's CPU (all cores, as Task Manager shows it) one process used
    since the previous run of the check."""
    max_cpu_percent_critical: float = Field(default=90, ge=0, le=100)
    max_rss_percent_warning: float = Field(default=30, ge=0, le=100)
    """Resident memory of one process as a share of the machine's RAM."""
    max_rss_percent_critical: float = Field(default=60, ge=0, le=100)
    max_rss_mib_warning: float | None = Field(default=None, ge=0)
    """Optional absolute limit on one process's resident memory; None: not judged."""
    max_rss_mib_critical: float | None = Field(default=None, ge=0)
    ignore_processes: tuple[ProcessName, ...] = Field(default=(), max_length=64)
    """Process names (any case) allowed to be busy or big, e.g. a build tool or a VM."""

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        pairs = (
            ("max_cpu_percent", self.max_cpu_percent_warning, self.max_cpu_percent_critical),
            ("max_rss_percent", self.max_rss_percent_warning, self.max_rss_percent_critical),
            ("max_rss_mib", self.max_rss_mib_warning, self.max_rss_mib_critical),
        )
        for name, warning, critical in pairs:
            if warning is not None and critical is not None and warning > critical:
                raise ValueError(f"{name}_warning must not exceed {name}_critical")
        return self


class ProcessRunaway(Check[ProcessesFacts, ProcessRunawayThresholds]):
    id = "process.runaway"
    title = "Runaway process"
    category = Category.SOFTWARE
    default_interval = timedelta(minutes=2)
    remediation = (
        "Save your work in the program named, then close it and open it again. If it does not "
        "close, end it in the Task Manager (Activity Monitor on a Mac). If it keeps happening, "
        "update or reinstall that program, or restart the PC."
    )
    emits = (
        ValueSpec("cpu_percent", "%", "CPU share of the whole machine used by the busiest process"),
        ValueSpec("cpu_process", "", "the busiest process: name and pid"),
        ValueSpec("rss_percent", "%", "share of RAM held by the largest process"),
        ValueSpec("rss_mib", "MiB", "resident memory of the largest process"),
        ValueSpec("memory_process", "", "the largest process: name and pid"),
        ValueSpec("processes", "count", "processes looked at"),
    )
    thresholds_type = ProcessRunawayThresholds

    def gather(
        self, source: FactSource, thresholds: ProcessRunawayThresholds
    ) -> ProcessesFacts | Unavailable:
        return source.top_processes(thresholds.ignore_processes)

    def evaluate(self, facts: ProcessesFacts, thresholds: ProcessRunawayThresholds) -> Outcome:
        t = thresholds
        ignored = {name.casefold() for name in t.ignore_processes}
        by_cpu = [p for p in facts.top_by_cpu if p.name.casefold() not in ignored]
        by_memory = [p for p in facts.top_by_memory if p.name.casefold() not in ignored]
        if not by_memory:
            return Outcome(CheckStatus.UNKNOWN, "no process could be read")
        values = [Measured("processes", facts.process_count, "count")]
        findings: list[tuple[CheckStatus, str]] = []

        busiest = by_cpu[0] if by_cpu and facts.cpu_window_seconds is not None else None
        if busiest is not None and busiest.cpu_percent is not None:
            share = busiest.cpu_percent / max(1, facts.logical_cores)
            values += [
                Measured("cpu_percent", round(share, 1), "%"),
                Measured("cpu_process", _who(busiest), ""),
            ]
            status = grade_max(share, t.max_cpu_percent_warning, t.max_cpu_percent_critical)
            limit = _limit(status, t.max_cpu_percent_warning, t.max_cpu_percent_critical)
            findings.append((status, f"{_who(busiest)} used {share:.0f}% of the CPU{limit}"))

        largest = by_memory[0]
        rss_mib = largest.rss_bytes / MIB
        values += [
            Measured("rss_percent", round(largest.memory_percent, 1), "%"),
            Measured("rss_mib", round(rss_mib, 1), "MiB"),
            Measured("memory_process", _who(largest), ""),
        ]
        by_share = grade_max(
            largest.memory_percent, t.max_rss_percent_warning, t.max_rss_percent_critical
        )
        by_size = _grade_optional(rss_mib, t.max_rss_mib_warning, t.max_rss_mib_critical)
        status = max(by_share, by_size)
        limits = []
        if status is not CheckStatus.OK:
            if by_share is status:
                share_limit = _pick(status, t.max_rss_percent_warning, t.max_rss_percent_critical)
                limits.append(f"above {share_limit:g}% of RAM")
            if by_size is status:
                size_limit = _pick(status, t.max_rss_mib_warning, t.max_rss_mib_critical)
                limits.append(f"above {size_limit:g} MiB")
        held = (
            f"{_who(largest)} holds {_size(largest.rss_bytes)} "
            f"({largest.memory_percent:.0f}% of RAM)"
        )
        if limits:
            held += f" ({status.label} {', '.join(limits)})"
        findings.append((status, held))

        worst = max(status for status, _ in findings)
        if worst is CheckStatus.OK:
            summary = "; ".join(text for _, text in findings)
        else:
            summary = "; ".join(text for status, text in findings if status is worst)
        if busiest is None:
            summary += "; CPU use is measured from the next run on"
        return Outcome(worst, summary, tuple(values))


def _who(process: ProcessInfo) -> str:
    user = f", {process.user}" if process.user else ""
    return f"{process.name} (pid {process.pid}{user})"


def _size(rss_bytes: int) -> str:
    if rss_bytes >= GIB:
        return f"{rss_bytes / GIB:.1f} GiB"
    return f"{rss_bytes / MIB:.0f} MiB"


def _pick(status: CheckStatus, warning: float | None, critical: float | None) -> float:
    chosen = critical if status is CheckStatus.CRITICAL else warning
    return chosen if chosen is not None else 0.0


def _limit(status: CheckStatus, warning: float, critical: float) -> str:
    if status is CheckStatus.OK:
        return ""
    return f" ({status.label} above {_pick(status, warning, critical):g}%)"


def _grade_optional(value: float, warning: float | None, critical: float | None) -> CheckStatus:
    """grade_max with either limit optional (None: that limit is not judged)."""
    if critical is not None and value > critical:
        return CheckStatus.CRITICAL
    if warning is not None and value > warning:
        return CheckStatus.WARNING
    return CheckStatus.OK
