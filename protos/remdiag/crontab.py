"""Crontab expressions as APScheduler 3 triggers, shared by the agent (check schedules) and the
collector (maintenance windows).

The day-of-week field means what it means in crontab (0 or 7 is Sunday, `*/2` is Sunday,
Tuesday, ...). APScheduler 3's `CronTrigger.from_crontab` numbers weekdays from Monday, so the
field is rewritten into weekday names before it gets there.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

MAX_CRON_CHARS = 128
MAX_TIMEZONE_CHARS = 64

_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SCHEDULER_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CronError(ValueError):
    """A cron expression or timezone that cannot be; the text says what, in one line."""


def cron_trigger(cron: str, timezone: str = "") -> CronTrigger:
    """The trigger for a 5-field crontab expression read in an IANA timezone ("" is UTC).

    Raises CronError naming the expression and what is wrong with it.
    """
    if len(cron) > MAX_CRON_CHARS:
        raise CronError(f"cron: at most {MAX_CRON_CHARS} characters")
    fields = cron.split()
    if len(fields) != 5:
        raise CronError(
            f"cron {cron!r}: expected 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    zone = time_zone(timezone or "UTC")
    try:
        fields[4] = scheduler_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except ValueError as exc:  # CronError included
        raise CronError(f"cron {cron!r}: {exc}") from None


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; CronError if there is none."""
    if not name or len(name) > MAX_TIMEZONE_CHARS:
        raise CronError(f"timezone: an IANA name such as Europe/Lisbon, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"timezone {name!r}: not an IANA name such as Europe/Lisbon") from None


def scheduler_weekdays(field: str) -> str:
    """Crontab's day-of-week field (0 or 7 is Sunday) as APScheduler 3 weekday names.

    Raises CronError saying which part of the field is wrong (without the whole expression).
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()  # crontab numbers, 0 = Sunday
    for item in field.split(","):
        part, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not 1 <= int(step_text) <= 7:
                raise CronError(f"weekday step {step_text!r} is not 1 to 7")
            step = int(step_text)
        if part == "*":
            first, last = 0, 6
        else:
            first_text, dash, last_text = part.partition("-")
            first = _weekday(first_text, end=False)
            last = _weekday(last_text, end=True) if dash else (7 if slash else first)
            if first > last:
                raise CronError(f"weekday range {part!r} goes backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_SCHEDULER_WEEKDAYS[(day - 1) % 7] for day in sorted(days, key=_monday_first))


def _monday_first(day: int) -> int:
    return (day - 1) % 7


def _weekday(text: str, *, end: bool) -> int:
    lowered = text.lower()
    if lowered in _CRON_WEEKDAYS:
        number = _CRON_WEEKDAYS.index(lowered)
        return 7 if end and number == 0 else number  # "fri-sun" runs to the Sunday after
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise CronError(f"weekday {text!r} is not 0 to 7 or sun to sat")
