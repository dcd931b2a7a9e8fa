"""cpu.sustained_load: warns when the processor has been overloaded for minutes, not seconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator

from agent.checks.base import Check, Measured, Outcome, Thresholds, ValueSpec, grade_max
from agent.facts.models import CpuFacts, Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class CpuSustainedLoadThresholds(Thresholds):
    max_load_per_core_warning: float = Field(default=1.5, ge=0)
    max_load_per_core_critical: float = Field(default=3.0, ge=0)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Self:
        if self.max_load_per_core_warning > self.max_load_per_core_critical:
            raise ValueError("max_load_per_core_warning must not exceed max_load_per_core_critical")
        return self


class CpuSustainedLoad(Check[CpuFacts, CpuSustainedLoadThresholds]):
    id = "cpu.sustained_load"
    title = "Sustained CPU load"
    category = Category.HARDWARE
    default_interval = timedelta(minutes=1)
    remediation = (
        "Open the Task Manager (or Activity Monitor), sort by CPU and close or restart the "
        "program using the most. If nothing obvious stands out, restart the PC; if the load "
        "comes back, look for a stuck update, an antivirus scan or malware."
    )
    emits = (
        ValueSpec("load_per_core_5m", "", "5-minute load average divided by logical cores"),
        ValueSpec("load_5m", "", "5-minute load average (processes running or waiting)"),
        ValueSpec("load_15m", "", "15-minute load average"),
        ValueSpec("cpu_percent", "%", "CPU busy since the previous sample"),
        ValueSpec("logical_cores", "count", "logical CPU cores"),
    )
    thresholds_type = CpuSustainedLoadThresholds

    def gather(
        self, source: FactSource, thresholds: CpuSustainedLoadThresholds
    ) -> CpuFacts | Unavailable:
        return source.cpu()

    def evaluate(self, facts: CpuFacts, thresholds: CpuSustainedLoadThresholds) -> Outcome:
        if facts.logical_cores <= 0:
            return Outcome(CheckStatus.UNKNOWN, "the number of CPU cores is unknown")
        t = thresholds
        per_core = facts.load_5m / facts.logical_cores
        status = grade_max(per_core, t.max_load_per_core_warning, t.max_load_per_core_critical)
        summary = (
            f"5-minute load {per_core:.2f} per core on {facts.logical_cores} cores, "
            f"CPU {facts.percent:.0f}% busy"
        )
        if status is not CheckStatus.OK:
            limit = (
                t.max_load_per_core_critical
                if status is CheckStatus.CRITICAL
                else t.max_load_per_core_warning
            )
            summary += f" ({status.label} above {limit:g} per core)"
        values = (
            Measured("load_per_core_5m", round(per_core, 3), ""),
            Measured("load_5m", facts.load_5m, ""),
            Measured("load_15m", facts.load_15m, ""),
            Measured("cpu_percent", facts.percent, "%"),
            Measured("logical_cores", facts.logical_cores, "count"),
        )
        return Outcome(status, summary, values)
