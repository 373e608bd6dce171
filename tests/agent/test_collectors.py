"""Facts and heartbeats from this very machine, and the filter that hides pseudo filesystems."""

from __future__ import annotations

import socket
import time

from signalbeam import __version__
from signalbeam.agent.collectors import Collector, real_mount


def test_heartbeat_from_this_machine() -> None:
    collector = Collector()
    time.sleep(0.2)
    beat = collector.sample()
    assert beat.sampled_at is not None
    assert beat.cpu_percent is not None and 0 <= beat.cpu_percent <= 100
    assert beat.memory_percent is not None and 0 < beat.memory_percent <= 100
    assert beat.uptime_seconds is not None and beat.uptime_seconds > 0
    assert beat.load1 is not None
    assert beat.net_bytes_recv is not None
    assert any(disk.mount == "/" for disk in beat.disks)


def test_facts_from_this_machine() -> None:
    facts = Collector().read_facts()
    assert facts.hostname == socket.gethostname()
    assert facts.agent_version == __version__
    assert facts.os and facts.kernel and facts.arch
    assert "127.0.0.1" not in facts.ip_addresses


def test_only_real_mounts_count() -> None:
    assert real_mount("/dev/mmcblk0p2", "/", "ext4")
    assert real_mount("/dev/sda1", "/data", "xfs")
    assert not real_mount("tmpfs", "/tmp", "tmpfs")
    assert not real_mount("/dev/loop3", "/snap/core/1234", "squashfs")
    assert not real_mount("/dev/loop0", "/mnt/image", "ext4")
    assert not real_mount("/dev/sda1", "/snap/thing", "ext4")
    assert not real_mount("overlay", "/var/lib/docker/overlay2/x/merged", "overlay")
    assert not real_mount("proc", "/proc", "proc")


def test_a_failing_sensor_is_left_out_and_logged_once() -> None:
    collector = Collector()

    def broken() -> float:
        raise OSError("no such sensor")

    assert collector._read("fan speed", broken) is None
    assert collector._read("fan speed", broken) is None
    assert collector._warned == {"fan speed"}
