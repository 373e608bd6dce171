"""A device's own network: a namespace joined to the host by a veth pair, and faults to inject.

Used by the chaos tests and by `python -m bench.chaos`; it needs root, `ip` and `nft`.

The agent runs inside the namespace (`ip netns exec NAME ...`) and reaches the server on the
host end of the veth. Faults are real kernel ones: the link taken down, packets dropped at
random by nftables inside the namespace, connections reset, and (this kernel has no netem)
delay by DNAT to a relay on the host that holds each chunk (tests/chaos/relay.py).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass

TABLE = "chaos"
_numbers = itertools.count()


def run(*command: str) -> str:
    """Run `ip` or `nft`; fail with what it said."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def available() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (Debian iproute2, nftables)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@dataclass(frozen=True)
class Namespace:
    """One device network: `host` is the server's address, `device` the agent's."""

    name: str
    host_link: str
    host: str
    device: str

    @classmethod
    def create(cls) -> Namespace:
        """A fresh namespace with its veth up and addressed (unique per process and call)."""
        # Names and a /30 unique to this pytest process (xdist runs three at once) and call;
        # interface names must stay under 16 characters.
        pid, number = os.getpid() % 100_000, next(_numbers)
        prefix, slot = f"10.{200 + pid % 50}.{pid % 250}", (pid // 250 * 7 + number) % 64
        name = f"sbc{pid}x{number}"
        space = cls(name, f"{name}h", f"{prefix}.{slot * 4 + 1}", f"{prefix}.{slot * 4 + 2}")
        space.destroy()  # what a killed run may have left behind
        peer = f"{name}d"
        run("ip", "netns", "add", name)
        run("ip", "link", "add", space.host_link, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", name)
        run("ip", "addr", "add", f"{space.host}/30", "dev", space.host_link)
        run("ip", "link", "set", space.host_link, "up")
        space.exec("ip", "addr", "add", f"{space.device}/30", "dev", peer)
        space.exec("ip", "link", "set", peer, "up")
        space.exec("ip", "link", "set", "lo", "up")
        space._tables()
        return space

    @property
    def launcher(self) -> list[str]:
        """The prefix that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def exec(self, *command: str) -> str:
        """Run a command inside the namespace."""
        return run(*self.launcher, *command)

    def nft(self, *rule: str) -> str:
        """Run an `nft` command inside the namespace."""
        return self.exec("nft", *rule)

    def _tables(self) -> None:
        # Filter chains for the faults and a nat chain for the relay; rules go in at run time.
        self.nft("add", "table", "ip", TABLE)
        for chain, hook in (("out", "output"), ("in", "input")):
            spec = f"{{ type filter hook {hook} priority 0; policy accept; }}"
            self.nft("add", "chain", "ip", TABLE, chain, spec)
        spec = "{ type nat hook output priority -100; policy accept; }"
        self.nft("add", "chain", "ip", TABLE, "nat", spec)

    def link(self, up: bool) -> None:
        """Take the host end of the veth down (the device loses carrier) or up again."""
        run("ip", "link", "set", self.host_link, "up" if up else "down")

    def loss(self, percent: int) -> None:
        """Drop `percent` % of the packets leaving and entering the device's link at random."""
        for chain, direction in (("out", "oifname"), ("in", "iifname")):
            self.nft(
                "add", "rule", "ip", TABLE, chain, direction, f"{self.name}d",
                "numgen", "random", "mod", "100", "<", str(percent), "drop",
            )  # fmt: skip

    def reset(self, port: int) -> None:
        """Answer the device's packets to the server's `port` with TCP resets: a hard cut."""
        self.nft(
            "add", "rule", "ip", TABLE, "out", "ip", "daddr", self.host,
            "tcp", "dport", str(port), "reject", "with", "tcp", "reset",
        )  # fmt: skip

    def heal(self) -> None:
        """Remove every loss and reset rule (the relay's DNAT stays: removing it cuts)."""
        for chain in ("out", "in"):
            self.nft("flush", "chain", "ip", TABLE, chain)

    def through_relay(self, port: int, relay_port: int) -> None:
        """Send the device's connections to the server's `port` to a relay on the host end."""
        self.nft(
            "add", "rule", "ip", TABLE, "nat", "ip", "daddr", self.host,
            "tcp", "dport", str(port), "dnat", "to", f"{self.host}:{relay_port}",
        )  # fmt: skip

    def destroy(self) -> None:
        """Remove the namespace and both ends of the veth (both quietly, if they exist)."""
        for command in (
            ("ip", "netns", "del", self.name),
            ("ip", "link", "del", self.host_link),
        ):
            subprocess.run(command, capture_output=True, timeout=30, check=False)
