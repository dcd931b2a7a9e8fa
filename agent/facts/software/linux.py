"""Software facts on Linux: os-release, dpkg/rpm, apt/dnf, systemd, kernel clock, journald.

Parsers are pure `parse_*` functions tested on recorded outputs; the gatherers below them read
the files or run the tools through agent/facts/command.py. Package-manager answers are cached
on the mtimes of the databases they read, so a steady cycle costs a few stat() calls.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.facts.cache import MtimeCache, Signature, signature
from agent.facts.command import read_text, run_command
from agent.facts.models import Unavailable
from agent.facts.software.models import (
    MAX_LOG_ERRORS,
    LogErrorsFacts,
    OsFacts,
    Package,
    PackagesFacts,
    PendingUpdate,
    RebootFacts,
    ServicesFacts,
    ServiceState,
    TimeSyncFacts,
    UpdatesFacts,
)
from remdiag.files import write_atomic

DAY_S = 86400.0
HOUR_S = 3600.0

# --- parsers (pure) -------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of os-release(5), with shell quoting removed."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            # os-release allows backslash escapes of $, ", \ and ` inside double quotes.
            value = re.sub(r"\\([$\"\\`])", r"\1", value)
        found[key.strip()] = value
    return found


# dpkg states in which the package's files are on disk (not "config-files" or "not-installed").
_DPKG_PRESENT = frozenset(
    {"installed", "half-configured", "unpacked", "triggers-awaited", "triggers-pending"}
)


def parse_dpkg_status(text: str) -> tuple[Package, ...]:
    """Installed packages from /var/lib/dpkg/status (deb822 stanzas), sorted by name."""
    packages = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            # Continuation lines (descriptions, conffiles) start with a space; skip them.
            if line[:1] in ("P", "S", "V", "A"):
                key, sep, value = line.partition(": ")
                if sep and key in ("Package", "Status", "Version", "Architecture"):
                    fields[key] = value.strip()
        name = fields.get("Package")
        state = fields.get("Status", "").rsplit(" ", 1)[-1]
        if name and state in _DPKG_PRESENT:
            packages.append(
                Package(name, fields.get("Version", ""), fields.get("Architecture", ""))
            )
    return tuple(sorted(packages, key=lambda p: (p.name, p.architecture)))


RPM_QUERY_FORMAT = r"%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n"
"""`rpm -qa --qf` format that parse_rpm_query reads: name, [epoch:]version-release, arch."""


def parse_rpm_query(text: str) -> tuple[Package, ...]:
    packages = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0]:
            continue
        name, version, arch = parts
        # rpm prints "(none)" for the architecture of gpg-pubkey pseudo-packages.
        packages.append(Package(name, version, "" if arch == "(none)" else arch))
    return tuple(sorted(packages, key=lambda p: (p.name, p.architecture)))


_APT_INST = re.compile(
    r"^Inst (?P<name>\S+) \[(?P<old>[^\]]*)\] \((?P<new>\S+)(?: (?P<origin>[^\[)]*?))?"
    r"(?: \[(?P<arch>[^\]]*)\])?\)",
    re.MULTILINE,
)


def parse_apt_simulation(text: str) -> tuple[PendingUpdate, ...]:
    """Upgrades in `apt-get -s dist-upgrade` output.

    Only "Inst" lines with a current version in brackets are upgrades of installed packages;
    new dependencies ("Inst pkg (version ...)") and "Conf"/"Remv" lines are not counted. An
    update is a security one when one of its origins' suites ends in "-security"
    (Debian-Security:12/bookworm-security, Ubuntu:22.04/jammy-security, ...).
    """
    updates = []
    for match in _APT_INST.finditer(text):
        origin = (match["origin"] or "").strip()
        suites = [part.strip().rsplit("/", 1)[-1] for part in origin.split(",")]
        updates.append(
            PendingUpdate(
                name=match["name"],
                new_version=match["new"],
                current_version=match["old"],
                security=any("-security" in suite for suite in suites),
                origin=origin,
            )
        )
    return tuple(updates)


def parse_dnf_check_update(text: str) -> tuple[PendingUpdate, ...]:
    """Updates in `dnf check-update` output: "name.arch  version  repository" rows.

    dnf wraps a row whose name is too long onto two lines, and lists obsoleted packages in a
    trailing section that is not a list of updates.
    """
    updates = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("Obsoleting Packages", "Security:")):
            if stripped.startswith("Obsoleting"):
                break
            continue
        if not stripped or stripped.startswith("Last metadata expiration check"):
            pending = []
            continue
        pending.extend(stripped.split())
        if len(pending) < 3:
            continue
        name_arch, version, repo = pending[:3]
        pending = []
        if "." not in name_arch:
            continue
        name, _, _arch = name_arch.rpartition(".")
        updates.append(PendingUpdate(name=name, new_version=version, origin=repo))
    return tuple(updates)


def parse_dnf_security(text: str) -> frozenset[str]:
    """Names of packages with a security advisory in `dnf updateinfo list --security`.

    Rows are "ADVISORY  Severity/Sec.  name-[epoch:]version-release.arch".
    """
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or ("/Sec" not in parts[1] and parts[1] != "security"):
            continue
        nevra = parts[-1]
        nevr = nevra.rpartition(".")[0] or nevra
        pieces = nevr.rsplit("-", 2)
        if len(pieces) == 3:
            names.add(pieces[0])
    return frozenset(names)


def parse_systemctl_units(text: str) -> tuple[ServiceState, ...]:
    """Service units in `systemctl list-units --type=service --all --plain --no-legend`.

    Columns: UNIT LOAD ACTIVE SUB DESCRIPTION. systemctl marks failed or not-found units with a
    leading "●" (or "*" without UTF-8) even in --plain output.
    """
    services = []
    for line in text.splitlines():
        parts = line.strip().lstrip("●*").split(None, 4)
        if len(parts) < 4 or not parts[0].endswith(".service"):
            continue
        unit, _load, active, sub = parts[:4]
        services.append(
            ServiceState(
                name=unit.removesuffix(".service"),
                running=active in ("active", "reloading"),
                failed=active == "failed",
                state=f"{active}/{sub}",
                description=parts[4].strip() if len(parts) > 4 else "",
            )
        )
    return tuple(services)


def parse_timedatectl(text: str) -> tuple[bool | None, bool | None]:
    """(NTPSynchronized, NTP) from `timedatectl show`; None where a property is missing."""
    props = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)

    def flag(name: str) -> bool | None:
        value = props.get(name)
        return None if value is None else value.strip() == "yes"

    return flag("NTPSynchronized"), flag("NTP")


def parse_chrony_tracking(text: str) -> TimeSyncFacts | None:
    """`chronyc -c tracking` (CSV): ref id, name, stratum, ref time, system time, ..., leap.

    Field 5 ("System time") is chronyd's current correction in seconds: positive when the
    clock is slow. Leap status "Not synchronised" means chronyd has no usable source.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    fields = line.split(",")
    if len(fields) < 14:
        return None
    try:
        correction_s = float(fields[4])
    except ValueError:
        return None
    leap = fields[13].strip()
    synced = leap != "Not synchronised" and fields[0] not in ("00000000", "7F7F0101")
    return TimeSyncFacts(
        source="chrony",
        synchronized=synced,
        offset_ms=abs(correction_s) * 1000.0 if synced else None,
        ntp_enabled=True,
        server=fields[1],
    )


_JOURNAL_TIME = re.compile(r'"__REALTIME_TIMESTAMP"\s*:\s*"(\d+)"')


def parse_journal_timestamps(text: str) -> tuple[float, ...]:
    """Entry times (epoch seconds) in `journalctl -o json` output, one entry per line."""
    return tuple(int(m[1]) / 1e6 for m in _JOURNAL_TIME.finditer(text))


_SYSLOG_ERROR = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) .*"
    r"\b(?:error|fatal|critical|crit|panic|segfault|emerg|alert)\b.*$",
    re.MULTILINE | re.IGNORECASE,
)


def parse_syslog_error_times(text: str, now: float) -> tuple[float, ...]:
    """Times (epoch) of lines in a syslog file that name an error.

    Plain syslog files do not record the level, so a line counts when its message says error,
    fatal, critical, panic, segfault, emerg or alert. Traditional timestamps have no year:
    the year is the one that does not put the line in the future.
    """
    times = []
    year = time.localtime(now).tm_year
    for match in _SYSLOG_ERROR.finditer(text):
        stamp = match["stamp"]
        try:
            if stamp[0].isdigit():
                times.append(datetime.fromisoformat(stamp).timestamp())
                continue
            parsed = time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S")
        except ValueError:
            continue
        at = time.mktime(parsed)
        if at > now + DAY_S:
            at = time.mktime(time.strptime(f"{year - 1} {stamp}", "%Y %b %d %H:%M:%S"))
        times.append(at)
    return tuple(times)


# --- gatherers ------------------------------------------------------------------------------


def operating_system(
    os_release_paths: Sequence[str] = ("/etc/os-release", "/usr/lib/os-release"),
) -> OsFacts | Unavailable:
    kernel = platform.release()
    arch = platform.machine()
    for path in os_release_paths:
        text = read_text(path)
        if isinstance(text, str):
            release = parse_os_release(text)
            return OsFacts(
                system="Linux",
                name=release.get("PRETTY_NAME") or release.get("NAME", "Linux"),
                version=release.get("VERSION_ID", ""),
                kernel=kernel,
                architecture=arch,
                distribution_id=release.get("ID", ""),
                codename=release.get("VERSION_CODENAME", ""),
            )
    # Still worth reporting: the kernel says what it is even without os-release.
    return OsFacts("Linux", "Linux", "", kernel, arch)


REBOOT_FLAG = "/var/run/reboot-required"


def reboot_required(
    flag: str = REBOOT_FLAG, boot_dir: str = "/boot", now: float | None = None
) -> RebootFacts | Unavailable:
    """Debian/Ubuntu's flag file first; else a newer kernel in /boot than the one running.

    Package scripts (update-notifier, unattended-upgrades, needrestart) create the flag file
    and list the packages that asked for it in <flag>.pkgs; its age says how long the
    restart has been pending. Where no flag exists (Fedora, RHEL, SUSE), a kernel image in
    /boot newer than the running one means the update only takes effect after a restart;
    this is judged only when the running kernel's image is in /boot (so a container does not
    mistake its host's kernel for an outdated one).
    """
    now = time.time() if now is None else now
    try:
        flagged_at = os.stat(flag).st_mtime
    except FileNotFoundError:
        flagged_at = None
    except OSError as exc:
        return Unavailable(f"cannot read {flag}: {exc.strerror or exc}")
    if flagged_at is not None:
        pkgs = read_text(f"{flag}.pkgs")
        names = () if isinstance(pkgs, Unavailable) else _unique(pkgs.split())
        return RebootFacts(
            required=True,
            reasons=(f"{flag} exists",),
            packages=names,
            pending_seconds=max(0.0, now - flagged_at),
        )
    newer = _newer_kernel(boot_dir, platform.release())
    if newer is not None:
        kernel, installed_at = newer
        return RebootFacts(
            required=True,
            reasons=(f"kernel {kernel} is installed but {platform.release()} is running",),
            packages=(),
            pending_seconds=max(0.0, now - installed_at),
        )
    return RebootFacts(required=False)


def _newer_kernel(boot_dir: str, running: str) -> tuple[str, float] | None:
    """(version, mtime) of the newest kernel image in `boot_dir` if it is not the running one.

    Package managers keep the package's file times, so the newest image is the newest build.
    """
    try:
        images = {
            entry.name.removeprefix("vmlinuz-"): entry.stat().st_mtime
            for entry in os.scandir(boot_dir)
            if entry.name.startswith("vmlinuz-") and entry.is_file()
        }
    except OSError:
        return None
    if running not in images:
        return None
    newest = max(images, key=lambda version: images[version])
    if newest == running or images[newest] <= images[running]:
        return None
    return newest, images[newest]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


DPKG_STATUS = "/var/lib/dpkg/status"
RPM_DB_PATHS = (
    "/var/lib/rpm",
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
)
# A day: the answer is re-read at least that often even if nothing seemed to change.
_PACKAGES = MtimeCache[PackagesFacts | Unavailable](max_age_s=DAY_S)


def packages(dpkg_status: str = DPKG_STATUS) -> PackagesFacts | Unavailable:
    """Installed packages from dpkg's status file (read directly: no process), else rpm."""
    if os.path.exists(dpkg_status):
        key = ("dpkg", signature([dpkg_status]))
        return _PACKAGES.get(key, lambda: _dpkg_packages(dpkg_status))
    if any(os.path.exists(path) for path in RPM_DB_PATHS):
        return _PACKAGES.get(("rpm", signature(RPM_DB_PATHS)), _rpm_packages)
    return Unavailable("no package database found (neither dpkg nor rpm)")


def _dpkg_packages(path: str) -> PackagesFacts | Unavailable:
    text = read_text(path, limit=256 * 1024 * 1024)
    if isinstance(text, Unavailable):
        return text
    return PackagesFacts("dpkg", parse_dpkg_status(text))


def _rpm_packages() -> PackagesFacts | Unavailable:
    done = run_command(["rpm", "-qa", "--qf", RPM_QUERY_FORMAT], timeout_s=60)
    if isinstance(done, Unavailable):
        return done
    return PackagesFacts("rpm", parse_rpm_query(done.stdout))


APT_LISTS = "/var/lib/apt/lists"
APT_UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
DNF_CACHE = "/var/cache/dnf"
DNF_MAKECACHE_STAMP = "/var/cache/dnf/last_makecache"
_UPDATES = MtimeCache[UpdatesFacts | Unavailable](max_age_s=DAY_S)
_UPDATES_FILE = "software-updates.json"


def pending_updates(state_dir: Path | None) -> UpdatesFacts | Unavailable:
    """Pending updates from apt's or dnf's local lists and cache; never refreshes them.

    The answer is kept (in memory, and in `state_dir` across restarts) until the package lists
    or the package database change, since working it out costs a second of CPU or more.
    """
    if os.path.exists(DPKG_STATUS) and os.path.exists(APT_LISTS):
        key = ("apt", signature([APT_LISTS, DPKG_STATUS]))
        found = _UPDATES.get(key, lambda: _persisted(state_dir, key, _apt_updates))
        return _with_lists_age(found, [APT_UPDATE_STAMP, APT_LISTS])
    if os.path.isdir(DNF_CACHE):
        key = ("dnf", signature([DNF_CACHE, *RPM_DB_PATHS]))
        found = _UPDATES.get(key, lambda: _persisted(state_dir, key, _dnf_updates))
        return _with_lists_age(found, [DNF_MAKECACHE_STAMP, DNF_CACHE])
    return Unavailable("no supported package manager with local lists (apt, dnf) found")


def _with_lists_age(
    found: UpdatesFacts | Unavailable, paths: Sequence[str]
) -> UpdatesFacts | Unavailable:
    """`found` with the age of the newest of `paths`: when the lists were last refreshed."""
    if isinstance(found, Unavailable):
        return found
    stamps = [mtime for _, mtime, _ in signature(paths) if mtime >= 0]
    if not stamps:
        return found
    age = max(0.0, time.time() - max(stamps) / 1e9)
    return dataclasses.replace(found, lists_age_seconds=age)


def _apt_updates() -> UpdatesFacts | Unavailable:
    done = run_command(["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"], timeout_s=120)
    if isinstance(done, Unavailable):
        return done
    return UpdatesFacts("apt", parse_apt_simulation(done.stdout))


def _dnf_updates() -> UpdatesFacts | Unavailable:
    # -C: cache only, never the network. check-update exits 100 when updates are pending.
    listed = run_command(["dnf", "-C", "--quiet", "check-update"], timeout_s=120, ok_codes=(0, 100))
    if isinstance(listed, Unavailable):
        return listed
    updates = parse_dnf_check_update(listed.stdout)
    advisories = run_command(
        ["dnf", "-C", "--quiet", "updateinfo", "list", "--security"], timeout_s=120
    )
    if isinstance(advisories, Unavailable):
        return UpdatesFacts("dnf", updates, security_known=False)
    security = parse_dnf_security(advisories.stdout)
    marked = tuple(dataclasses.replace(u, security=u.name in security) for u in updates)
    return UpdatesFacts("dnf", marked)


def _persisted(
    state_dir: Path | None,
    key: tuple[str, Signature],
    compute: Callable[[], UpdatesFacts | Unavailable],
) -> UpdatesFacts | Unavailable:
    """compute(), or the answer saved in `state_dir` under the same key by an earlier run."""
    path = state_dir / _UPDATES_FILE if state_dir is not None else None
    wanted = json.loads(json.dumps(key))  # tuples as the lists JSON gives back
    if path is not None:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("key") == wanted:
                return _updates_from_json(saved["facts"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # nothing saved, or saved by another version: work it out again
    found: UpdatesFacts | Unavailable = compute()
    if path is not None and isinstance(found, UpdatesFacts):
        try:
            payload = {"key": wanted, "facts": dataclasses.asdict(found)}
            write_atomic(path, json.dumps(payload).encode("utf-8"))
        except OSError:
            pass  # kept in memory all the same
    return found


def _updates_from_json(data: dict[str, Any]) -> UpdatesFacts:
    return UpdatesFacts(
        manager=str(data["manager"]),
        updates=tuple(PendingUpdate(**u) for u in data["updates"]),
        security_known=bool(data["security_known"]),
    )


SYSTEMD_RUNTIME = "/run/systemd/system"


def services(systemd_runtime: str = SYSTEMD_RUNTIME) -> ServicesFacts | Unavailable:
    """Every loaded service unit and its state, from one systemctl call."""
    # sd_booted(3): this directory exists exactly when systemd is PID 1. Checking it first
    # spares a process that would only fail.
    if not os.path.isdir(systemd_runtime):
        return Unavailable(
            f"systemd is not running: {systemd_runtime} does not exist "
            "(this machine was not booted with systemd)"
        )
    done = run_command(
        [
            *("systemctl", "list-units", "--type=service", "--all"),
            *("--no-pager", "--plain", "--no-legend"),
        ],
        timeout_s=20,
    )
    if isinstance(done, Unavailable):
        return Unavailable(f"systemd is not running: {done.reason}")
    return ServicesFacts("systemd", parse_systemctl_units(done.stdout))


# adjtimex(2) returns TIME_ERROR when the kernel's clock is not synchronised (STA_UNSYNC).
_TIME_ERROR = 5
CHRONY_SOCKETS = ("/run/chrony/chronyd.sock", "/var/run/chrony/chronyd.sock")


def kernel_clock_synchronized() -> bool | Unavailable:
    """Whether an NTP daemon has told the kernel its clock is synchronised.

    This is what timedatectl's NTPSynchronized reports, read directly: no process, no D-Bus.
    adjtimex with modes 0 only reads; the buffer is larger than struct timex on any ABI.
    """
    try:
        state = int(_libc().adjtimex(ctypes.create_string_buffer(1024)))
    except (OSError, AttributeError) as exc:
        return Unavailable(f"cannot call adjtimex: {exc}")
    if state < 0:
        return Unavailable(f"adjtimex failed: {os.strerror(ctypes.get_errno())}")
    return state != _TIME_ERROR


@functools.cache
def _libc() -> ctypes.CDLL:
    # The symbols already loaded into this process, libc's among them: no library search
    # (ctypes.util.find_library would run ldconfig).
    return ctypes.CDLL(None, use_errno=True)


def time_sync(chrony_sockets: Sequence[str] = CHRONY_SOCKETS) -> TimeSyncFacts | Unavailable:
    """chronyd's view when it runs (it knows the offset); else the kernel's sync flag."""
    if any(os.path.exists(sock) for sock in chrony_sockets):
        done = run_command(["chronyc", "-c", "-n", "tracking"], timeout_s=5)
        if not isinstance(done, Unavailable):
            tracked = parse_chrony_tracking(done.stdout)
            if tracked is not None:
                return tracked
    synced = kernel_clock_synchronized()
    if not isinstance(synced, Unavailable):
        return TimeSyncFacts(source="kernel", synchronized=synced)
    # Without adjtimex (an unusual libc), ask systemd-timedated over D-Bus.
    done = run_command(["timedatectl", "show"], timeout_s=10)
    if isinstance(done, Unavailable):
        return Unavailable(f"{synced.reason}; {done.reason}")
    sync, ntp = parse_timedatectl(done.stdout)
    return TimeSyncFacts(source="timedatectl", synchronized=sync, ntp_enabled=ntp)


JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")
SYSLOG_FILES = ("/var/log/syslog", "/var/log/messages")
SYSLOG_TAIL_BYTES = 4 * 1024 * 1024


class LogErrorCounter:
    """Counts error-level system log entries of the last hour.

    The times of the error entries found are kept with the signature of the log files, so a
    call while the logs have not changed only drops the entries that left the window: no
    journalctl, no reading.
    """

    def __init__(
        self,
        journal_dirs: Sequence[str] = JOURNAL_DIRS,
        syslog_files: Sequence[str] = SYSLOG_FILES,
        window_s: float = HOUR_S,
    ) -> None:
        self._journal_dirs = journal_dirs
        self._syslog_files = syslog_files
        self._window_s = window_s
        self._key: object = None
        self._times: tuple[float, ...] = ()
        self._source = ""
        self._truncated = False

    def count(self, now: float | None = None) -> LogErrorsFacts | Unavailable:
        now = time.time() if now is None else now
        since = now - self._window_s
        journals = _journal_files(self._journal_dirs)
        if journals:
            key: object = ("journald", signature(journals))
            if key != self._key:
                found = self._read_journal(since)
                if isinstance(found, Unavailable):
                    return found
                self._key, self._source = key, "journald"
        else:
            readable = [p for p in self._syslog_files if os.access(p, os.R_OK)]
            if not readable:
                return Unavailable(
                    "no readable system log: journald keeps no journal files here and "
                    f"{' and '.join(self._syslog_files)} do not exist or are not readable"
                )
            key = ("syslog", signature(readable[:1]))
            if key != self._key:
                found = self._read_syslog(readable[0], now)
                if isinstance(found, Unavailable):
                    return found
                self._key, self._source = key, f"{readable[0]} (keyword match)"
        self._times = tuple(t for t in self._times if t >= since)
        return LogErrorsFacts(
            source=self._source,
            errors_last_hour=len(self._times),
            window_seconds=self._window_s,
            truncated=self._truncated and len(self._times) >= MAX_LOG_ERRORS,
        )

    def _read_journal(self, since: float) -> Unavailable | None:
        done = run_command(
            [
                *("journalctl", "--priority=err", f"--since=@{int(since)}", "--output=json"),
                *("--output-fields=PRIORITY", f"--lines={MAX_LOG_ERRORS}", "--no-pager", "-q"),
            ],
            timeout_s=30,
        )
        if isinstance(done, Unavailable):
            return done
        self._times = parse_journal_timestamps(done.stdout)
        self._truncated = len(self._times) >= MAX_LOG_ERRORS
        return None

    def _read_syslog(self, path: str, now: float) -> Unavailable | None:
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                start = max(0, size - SYSLOG_TAIL_BYTES)
                handle.seek(start)
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return Unavailable(f"cannot read {path}: {exc.strerror or exc}")
        if start:
            text = text.partition("\n")[2]  # the first line is cut short
        times = parse_syslog_error_times(text, now)
        self._times = times[-MAX_LOG_ERRORS:]
        self._truncated = len(times) >= MAX_LOG_ERRORS
        return None


def _journal_files(dirs: Sequence[str]) -> list[str]:
    """The journal files journald writes, one level down (<dir>/<machine-id>/*.journal)."""
    found: list[str] = []
    for top in dirs:
        try:
            machines = [e.path for e in os.scandir(top) if e.is_dir()]
        except OSError:
            continue
        for machine in machines:
            try:
                found.extend(e.path for e in os.scandir(machine) if e.name.endswith(".journal"))
            except OSError:
                continue
    return sorted(found)
