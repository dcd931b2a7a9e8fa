"""LiveFacts: the FactSource that reads this machine through psutil and the network stack."""

from __future__ import annotations

import functools
import os
import platform
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import psutil

from agent.facts import reachability
from agent.facts.hardware.live import LiveHardware
from agent.facts.models import (
    CpuFacts,
    DisksFacts,
    DnsFacts,
    FilesystemFacts,
    GatewayFacts,
    InterfaceFacts,
    InterfacesFacts,
    MemoryFacts,
    Unavailable,
    UptimeFacts,
)
from agent.facts.network.live import LiveNetwork
from agent.facts.security.live import LiveSecurity
from agent.facts.software.live import LiveSoftware

# psutil raises its own errors (AccessDenied, ...) besides OSError; RuntimeError covers its
# "not supported on this platform" paths.
_GATHER_ERRORS = (OSError, psutil.Error, RuntimeError)


class _Partition(Protocol):
    """What we read of psutil's partition tuple (its class lives in a private module)."""

    @property
    def device(self) -> str: ...
    @property
    def mountpoint(self) -> str: ...
    @property
    def fstype(self) -> str: ...
    @property
    def opts(self) -> str: ...


def _why(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _owning_partition(path: str, partitions: Sequence[_Partition]) -> _Partition | None:
    """The partition whose mount point is the longest prefix of `path`."""
    real = os.path.normcase(os.path.realpath(path))
    best: _Partition | None = None
    for part in partitions:
        mount = os.path.normcase(part.mountpoint)
        inside = real == mount or real.startswith(mount.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(mount) > len(best.mountpoint)):
            best = part
    return best


class LiveFacts(LiveHardware, LiveSoftware, LiveNetwork, LiveSecurity):
    """Facts about this machine, read when asked. Cheap to keep; keep one per agent.

    `state_dir` keeps what some facts remember across runs (disk growth history, ...);
    `gateway_tcp_ports` are tried when ICMP sockets are not permitted.
    """

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        gateway_tcp_ports: Sequence[int] = reachability.DEFAULT_TCP_PORTS,
    ) -> None:
        self.state_dir = state_dir
        self._gateway_tcp_ports = tuple(gateway_tcp_ports)
        # cpu_percent(interval=None) measures since its previous call and answers 0.0 the first
        # time; getloadavg() on Windows starts its sampler on first use. Prime both now.
        try:
            psutil.cpu_percent(interval=None)
            psutil.cpu_percent(interval=None, percpu=True)
            psutil.getloadavg()
        except _GATHER_ERRORS:
            pass  # cpu() reports it

    def cpu(self) -> CpuFacts | Unavailable:
        try:
            logical = psutil.cpu_count(logical=True)
            physical = psutil.cpu_count(logical=False)
            percent = psutil.cpu_percent(interval=None)
            load_1m, load_5m, load_15m = psutil.getloadavg()
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot read CPU use: {_why(exc)}")
        if not logical:
            return Unavailable("cannot count the CPU cores")
        return CpuFacts(
            logical,
            physical,
            percent,
            load_1m,
            load_5m,
            load_15m,
            model=cpu_model(),
            frequency_mhz=_frequency_mhz(),
            per_core_percent=tuple(psutil.cpu_percent(interval=None, percpu=True)),
        )

    def memory(self) -> MemoryFacts | Unavailable:
        try:
            virtual = psutil.virtual_memory()
            swap = psutil.swap_memory()
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot read memory use: {_why(exc)}")
        return MemoryFacts(
            virtual.total, virtual.available, virtual.percent, swap.total, swap.percent
        )

    def disks(self, paths: Sequence[str]) -> DisksFacts | Unavailable:
        try:
            partitions = psutil.disk_partitions(all=bool(paths))
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot list filesystems: {_why(exc)}")
        if paths:
            return self._disks_holding(paths, partitions)
        found: dict[str, FilesystemFacts] = {}
        for part in partitions:
            # Read-only mounts (snap images, CD-ROMs) are full by design and cannot fill up.
            if part.mountpoint in found or "ro" in part.opts.split(","):
                continue
            try:
                found[part.mountpoint] = _filesystem(part.mountpoint, part)
            except _GATHER_ERRORS:
                continue  # e.g. an empty card reader, or a mount we may not read
        return DisksFacts(tuple(found.values()))

    @staticmethod
    def _disks_holding(paths: Sequence[str], partitions: Sequence[_Partition]) -> DisksFacts:
        filesystems: list[FilesystemFacts] = []
        errors: list[str] = []
        for path in paths:
            try:
                filesystems.append(_filesystem(path, _owning_partition(path, partitions)))
            except _GATHER_ERRORS as exc:
                errors.append(f"{path}: {_why(exc)}")
        return DisksFacts(tuple(filesystems), tuple(errors))

    def uptime(self) -> UptimeFacts | Unavailable:
        try:
            boot = psutil.boot_time()
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot read the boot time: {_why(exc)}")
        return UptimeFacts(boot, max(0.0, time.time() - boot))

    def interfaces(self) -> InterfacesFacts | Unavailable:
        try:
            stats = psutil.net_if_stats()
            addrs = psutil.net_if_addrs()
            counters = psutil.net_io_counters(pernic=True)
        except _GATHER_ERRORS as exc:
            return Unavailable(f"cannot list network interfaces: {_why(exc)}")
        found = []
        for name in sorted(stats.keys() | addrs.keys()):
            stat = stats.get(name)
            io = counters.get(name)
            addresses = tuple(
                a.address
                for a in addrs.get(name, ())
                if a.family in (socket.AF_INET, socket.AF_INET6)
            )
            found.append(
                InterfaceFacts(
                    name,
                    is_up=bool(stat and stat.isup),
                    speed_mbps=stat.speed if stat else 0,
                    mtu=stat.mtu if stat else 0,
                    addresses=addresses,
                    errors_in=io.errin if io else 0,
                    errors_out=io.errout if io else 0,
                    drops_in=io.dropin if io else 0,
                    drops_out=io.dropout if io else 0,
                    bytes_sent=io.bytes_sent if io else 0,
                    bytes_recv=io.bytes_recv if io else 0,
                )
            )
        return InterfacesFacts(tuple(found))

    def dns(self, names: Sequence[str], timeout_s: float) -> DnsFacts | Unavailable:
        return reachability.resolve(names, timeout_s)

    def gateway(
        self, target: str | None, probes: int, timeout_s: float
    ) -> GatewayFacts | Unavailable:
        if target is None:
            found = reachability.default_gateway()
            if isinstance(found, Unavailable):
                return found
            target = found
        return reachability.probe(target, probes, timeout_s, self._gateway_tcp_ports)


def _filesystem(path: str, part: _Partition | None) -> FilesystemFacts:
    usage = psutil.disk_usage(path)
    inodes_total: int | None = None
    inodes_free: int | None = None
    if hasattr(os, "statvfs"):
        vfs = os.statvfs(path)
        inodes_total, inodes_free = (vfs.f_files, vfs.f_ffree) if vfs.f_files else (None, None)
    return FilesystemFacts(
        path=path,
        mountpoint=part.mountpoint if part else "",
        device=part.device if part else "",
        fstype=part.fstype if part else "",
        total_bytes=usage.total,
        free_bytes=usage.free,
        used_percent=usage.percent,
        inodes_total=inodes_total,
        inodes_free=inodes_free,
    )


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo on Linux, the platform module elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor()


def _frequency_mhz() -> float | None:
    try:
        freq = psutil.cpu_freq()
    except (*_GATHER_ERRORS, NotImplementedError):
        return None
    return float(freq.current) if freq else None
