"""Facts and heartbeats from psutil; every sensor is optional and none can stop a sync."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import platform
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import psutil

from signalbeam import __version__
from signalbeam.agent.wire import DiskUsage, Facts, Heartbeat, checked

log = logging.getLogger(__name__)
T = TypeVar("T")

PSEUDO_FILESYSTEMS = frozenset(
    [
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fusectl",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "udf",
    ]
)
SKIPPED_MOUNTS = ("/snap/", "/proc/", "/sys/", "/dev/", "/run/", "/var/lib/docker/")
# Sensors named after the CPU or SoC first: that is the temperature people watch on a Pi.
PREFERRED_SENSORS = ("cpu_thermal", "cpu-thermal", "soc_thermal", "coretemp", "k10temp", "zenpower")
MAX_DISKS = 64


def _clamp(value: float, low: float = 0.0, high: float = 100.0) -> float:
    return min(high, max(low, float(value)))


def real_mount(device: str, mountpoint: str, fstype: str) -> bool:
    """True for filesystems a person cares about: no pseudo filesystems, snaps or loop devices."""
    if fstype in PSEUDO_FILESYSTEMS or device.startswith("/dev/loop"):
        return False
    return not (mountpoint + "/").startswith(SKIPPED_MOUNTS)


def disks() -> list[DiskUsage]:
    """Usage of each real mounted filesystem, one entry per device."""
    seen: set[str] = set()
    found: list[DiskUsage] = []
    for part in psutil.disk_partitions(all=False):
        if part.device in seen or not real_mount(part.device, part.mountpoint, part.fstype):
            continue
        seen.add(part.device)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        found.append(DiskUsage(mount=part.mountpoint[:255], percent=_clamp(usage.percent)))
    return found[:MAX_DISKS]


def temperature() -> float | None:
    """The CPU/SoC temperature in °C, or None where the hardware reports none."""
    reader = getattr(psutil, "sensors_temperatures", None)
    sensors: dict[str, list[Any]] = reader() if reader else {}
    names = [n for n in PREFERRED_SENSORS if n in sensors] + sorted(sensors)
    for name in names:
        readings = [r.current for r in sensors[name] if r.current is not None]
        if readings and -100 <= max(readings) <= 200:
            return float(max(readings))
    return None


def network() -> tuple[int, int]:
    """Bytes sent and received on every interface but loopback."""
    counters = psutil.net_io_counters(pernic=True)
    real = [c for name, c in counters.items() if name != "lo"]
    return sum(c.bytes_sent for c in real), sum(c.bytes_recv for c in real)


def uptime() -> float:
    """Seconds since boot, from a clock that a wall-clock jump cannot move."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return max(0.0, time.time() - float(psutil.boot_time()))


def load() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages."""
    one, five, fifteen = psutil.getloadavg()
    return max(0.0, one), max(0.0, five), max(0.0, fifteen)


def ip_addresses() -> list[str]:
    """The device's addresses, without loopback and IPv6 link-local ones."""
    found: list[str] = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                parsed = ipaddress.ip_address(address.address.split("%")[0])
            except ValueError:
                continue
            if not (parsed.is_loopback or parsed.is_link_local) and str(parsed) not in found:
                found.append(str(parsed))
    return found[:64]


def os_name() -> str:
    """`Debian GNU/Linux 12 (bookworm)`, or the platform's own name."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "") or platform.system()
    except OSError:
        return f"{platform.system()} {platform.release()}".strip()


def timezone_name() -> str | None:
    """The IANA zone name (Europe/Oslo) when the system says, else the abbreviation."""
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = os.readlink(localtime)
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1][:64]
    return time.tzname[0][:64] or None


def read_boot_id(path: Path | None) -> str | None:
    """The kernel's id of this boot (None when not given or not Linux)."""
    if path is None:
        return None
    text = path.read_text().strip()
    return text[:64] or None


class Collector:
    """Takes heartbeats and facts; a sensor that fails is logged once and left out."""

    def __init__(self, boot_id_file: Path | None = None) -> None:
        self._warned: set[str] = set()
        # Read once: the boot id only changes with a reboot, which restarts the agent too.
        self.boot_id = self._read("boot id", lambda: read_boot_id(boot_id_file))
        # The first cpu_percent(interval=None) call only sets the baseline; every later call
        # answers with the average since the call before, i.e. over the sync interval.
        self._read("cpu", lambda: psutil.cpu_percent(interval=None))

    async def heartbeat(self) -> Heartbeat:
        """A heartbeat sampled now (psutil runs in a worker thread)."""
        return await asyncio.to_thread(self.sample)

    async def facts(self) -> Facts:
        """The device's facts (psutil runs in a worker thread)."""
        return await asyncio.to_thread(self.read_facts)

    def sample(self) -> Heartbeat:
        """Every sensor that answers, with `sampled_at` set."""
        cpu = self._read("cpu", lambda: _clamp(psutil.cpu_percent(interval=None)))
        memory = self._read("memory", lambda: _clamp(psutil.virtual_memory().percent))
        loads = self._read("load average", load) or (None, None, None)
        net = self._read("network counters", network) or (None, None)
        values: dict[str, Any] = {
            "uptime_seconds": self._read("uptime", uptime),
            "cpu_percent": cpu,
            "memory_percent": memory,
            "disks": self._read("disks", disks) or [],
            "load1": loads[0],
            "load5": loads[1],
            "load15": loads[2],
            "temperature_celsius": self._read("temperature", temperature),
            "net_bytes_sent": net[0],
            "net_bytes_recv": net[1],
            "boot_id": self.boot_id,
        }
        return self._heartbeat(values)

    def read_facts(self) -> Facts:
        """Hostname, OS, kernel, architecture, addresses, agent version, time zone."""
        return Facts(
            hostname=(self._read("hostname", socket.gethostname) or "")[:255],
            os=(self._read("os release", os_name) or "")[:255],
            kernel=platform.release()[:255],
            arch=platform.machine()[:64],
            agent_version=__version__,
            ip_addresses=self._read("ip addresses", ip_addresses) or [],
            timezone=self._read("time zone", timezone_name),
        )

    def _heartbeat(self, values: dict[str, Any]) -> Heartbeat:
        now = datetime.now(UTC)
        try:
            return checked(Heartbeat(**values, sampled_at=now))
        except msgspec.ValidationError as err:
            self._warn("heartbeat", f"a value is out of range ({err}); sending none")
            return Heartbeat(sampled_at=now)

    def _read(self, name: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except Exception as err:  # any sensor may fail in its own way
            self._warn(name, f"{type(err).__name__}: {err}")
            return None

    def _warn(self, name: str, reason: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("sensor %s unavailable (%s); reporting without it", name, reason)
