"""Simulated hosts on one machine: Linux network namespaces linked by a switch we can unplug.

Each host is a network namespace (`tq-<random>-<name>`) with one interface, `eth0`, whose other
end is plugged into a bridge inside a namespace of its own (the switch). Addresses come from
10.231.<subnet>.0/24 and exist only inside these namespaces: nothing is created in the machine's
own namespace (no interface, no route, no iptables rule), and the hosts have no default route,
so nothing they send can leave. `cut(host)` unplugs a host's cable (its switch port goes down),
`heal(host)` plugs it back; `impair(host, ...)` adds delay or loss with `tc ... netem` (when the
kernel has it). Processes run inside a host with `ip netns exec`, which execs them: the pid is
theirs, stopped by the caller by that pid.

Every command has a deadline. `close()` removes every namespace it made (which removes their
interfaces) and is registered with `atexit`, so a failing run leaves nothing behind. Root (or
CAP_SYS_ADMIN) and `ip` are needed: `available()` says whether they are there, and why not.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

COMMAND_TIMEOUT = 10.0
PREFIX = "tq-"


class NetnsError(RuntimeError):
    """A namespace command failed (the message has the command and what it printed)."""


class Check(NamedTuple):
    """Whether simulated hosts can be made here; `reason` says why not. Truthy when they can."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


_checked: Check | None = None


def available() -> Check:
    """Can this process create namespaces and veth links? Tried once, for real, then remembered."""
    global _checked
    if _checked is None:
        _checked = _probe()
    return _checked


def _probe() -> Check:
    if shutil.which("ip") is None:
        return Check(False, "no `ip` command (iproute2) on PATH")
    if os.geteuid() != 0:
        return Check(False, "network namespaces need root (or CAP_SYS_ADMIN)")
    try:
        with Network() as network:
            network.host("probe")
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return Check(False, f"cannot create a network namespace with a veth link: {exc}")
    return Check(True)


def ip(*args: str) -> str:
    """Run `ip ARGS` with a deadline; raise NetnsError with its output if it fails."""
    return _run(["ip", *args])


def _run(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except FileNotFoundError as exc:
        raise NetnsError(f"{command[0]}: not found") from exc
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(command)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    """One simulated host: its namespace, its address, and its port on the switch."""

    name: str
    namespace: str
    address: str
    port: str  # the interface in the switch's namespace that its cable is plugged into

    def exec_prefix(self) -> list[str]:
        """What to put before a command to run it on this host."""
        return ["ip", "netns", "exec", self.namespace]


class Network:
    """A switch and the hosts plugged into it; use as a context manager, or call `close()`."""

    def __init__(self, subnet: int = 0) -> None:
        if not 0 <= subnet <= 255:
            raise ValueError("subnet must be 0-255 (10.231.<subnet>.0/24)")
        self.tag = PREFIX + secrets.token_hex(3)  # unique per network: concurrent runs never meet
        self.subnet = subnet
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        atexit.register(self.close)
        try:
            self._add_namespace(self.switch)
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, name: str) -> Host:
        """A new host `name`, plugged into the switch, with the next address of the subnet."""
        if name in self.hosts or len(self.hosts) >= 250:
            raise ValueError(f"host {name!r} exists, or the subnet is full")
        index = len(self.hosts) + 1
        namespace = f"{self.tag}-{name}"
        port = f"p{index}"
        address = f"10.231.{self.subnet}.{index}"
        self._add_namespace(namespace)
        # Both ends are made inside their namespaces: nothing appears in the machine's own.
        veth = f"name eth0 netns {namespace} type veth peer name {port} netns {self.switch}"
        ip("link", "add", *veth.split())
        ip("-n", self.switch, "link", "set", port, "master", "br0")
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        host = Host(name, namespace, address, port)
        self.hosts[name] = host
        return host

    def popen(self, host: Host, command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        """Start `command` on `host` (`ip netns exec` execs it: the pid is the command's)."""
        return subprocess.Popen([*host.exec_prefix(), *command], **options)

    def run(self, host: Host, command: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> int:
        """Run `command` on `host` to its end (bounded); its exit status."""
        return subprocess.run(
            [*host.exec_prefix(), *command], capture_output=True, timeout=timeout, check=False
        ).returncode

    def cut(self, host: Host) -> None:
        """Unplug `host`: nothing goes in or out of it until `heal`; its connections hang."""
        ip("-n", self.switch, "link", "set", host.port, "down")

    def heal(self, host: Host) -> None:
        ip("-n", self.switch, "link", "set", host.port, "up")

    def impair(self, host: Host, delay_ms: float = 0, loss_percent: float = 0) -> None:
        """Delay and/or drop what `host` sends (`tc qdisc replace ... netem`); raises if no netem."""
        rules = ["delay", f"{delay_ms}ms"] if delay_ms else []
        rules += ["loss", f"{loss_percent}%"] if loss_percent else []
        _run(["tc", "-n", host.namespace, "qdisc", "replace", "dev", "eth0", "root", "netem", *rules])

    def unimpair(self, host: Host) -> None:
        with contextlib.suppress(NetnsError):
            _run(["tc", "-n", host.namespace, "qdisc", "del", "dev", "eth0", "root"])

    def close(self) -> None:
        """Kill what still runs in our namespaces (ours alone), then delete them; idempotent."""
        atexit.unregister(self.close)
        for namespace in reversed(self._namespaces):
            with contextlib.suppress(NetnsError, OSError, subprocess.TimeoutExpired):
                for pid in ip("netns", "pids", namespace).split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(NetnsError, OSError, subprocess.TimeoutExpired):
                ip("netns", "delete", namespace)
        self._namespaces.clear()
        self.hosts.clear()

    def _add_namespace(self, namespace: str) -> None:
        ip("netns", "add", namespace)
        self._namespaces.append(namespace)
        ip("-n", namespace, "link", "set", "lo", "up")


def leftovers() -> list[str]:
    """Namespaces named like ours that exist now (a test checks that a run leaves none)."""
    try:
        listed = ip("netns", "list")
    except (NetnsError, OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in listed.splitlines() if line.startswith(PREFIX)]
