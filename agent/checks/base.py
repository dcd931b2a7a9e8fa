"""What every check is: declared thresholds and values, a gather step, and a pure evaluate()."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from agent.facts.models import Unavailable
from agent.facts.source import FactSource
from remdiag.vocabulary import Category, CheckStatus


class Thresholds(BaseModel):
    """Base of every check's thresholds: immutable, unknown fields refused.

    Field names say their direction (`max_used_percent_warning`, `min_free_gib`); a policy
    overrides them by name without code.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class ValueSpec:
    """A value a check declares it reports."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class Measured:
    name: str
    value: float | str
    unit: str


@dataclass(frozen=True)
class Outcome:
    status: CheckStatus
    summary: str
    values: tuple[Measured, ...] = ()


FactsT = TypeVar("FactsT")
ThresholdsT = TypeVar("ThresholdsT", bound=Thresholds)


class Check(ABC, Generic[FactsT, ThresholdsT]):
    """One preventive check.

    Subclasses declare the class attributes and implement `gather` (which facts, from the
    source) and `evaluate` (pure: facts and thresholds in, an Outcome out). Only evaluate
    decides; a test hands it recorded facts.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[Category]
    default_interval: ClassVar[timedelta]
    remediation: ClassVar[str]
    emits: ClassVar[tuple[ValueSpec, ...]]
    thresholds_type: type[ThresholdsT]

    @abstractmethod
    def gather(self, source: FactSource, thresholds: ThresholdsT) -> FactsT | Unavailable:
        """Ask the source for the facts this check needs."""

    @abstractmethod
    def evaluate(self, facts: FactsT, thresholds: ThresholdsT) -> Outcome:
        """Judge the facts. Pure: no I/O, no clock, no psutil."""

    def judge(self, facts: FactsT | Unavailable, thresholds: ThresholdsT) -> Outcome:
        """evaluate(), with facts that could not be gathered turned into UNKNOWN."""
        if isinstance(facts, Unavailable):
            return Outcome(CheckStatus.UNKNOWN, f"could not measure: {facts.reason}")
        return self.evaluate(facts, thresholds)

    def thresholds(self, overrides: dict[str, Any] | None = None) -> ThresholdsT:
        """Declared defaults with `overrides` applied; raises pydantic.ValidationError."""
        return self.thresholds_type.model_validate(overrides or {})


def grade_max(value: float, warning: float, critical: float) -> CheckStatus:
    """Status of a value whose thresholds are inclusive upper limits."""
    if value > critical:
        return CheckStatus.CRITICAL
    if value > warning:
        return CheckStatus.WARNING
    return CheckStatus.OK


def grade_min(value: float, warning: float, critical: float) -> CheckStatus:
    """Status of a value whose thresholds are inclusive lower limits."""
    if value < critical:
        return CheckStatus.CRITICAL
    if value < warning:
        return CheckStatus.WARNING
    return CheckStatus.OK
