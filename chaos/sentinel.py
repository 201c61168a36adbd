"""A Sentinel topology of our own on loopback: 1 primary, N replicas, 3 sentinels; failovers on demand.

Every server is a `PrivateRedis` (a free loopback port, a temporary folder, stopped by pid).
The replicas start with `--replicaof`; the sentinels with a generated `sentinel.conf` (quorum 2,
`down-after-milliseconds 1000`). `failover()` SIGKILLs the current primary and waits (bounded)
until the sentinels agree on a new one; `rejoin()` restarts the old one as a replica of it.
`pause_failover()` freezes the primary (SIGSTOP) instead, and thaws it once it is replaced.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from app.infrastructure.redis.sentinel import master_client
from chaos.servers import PrivateRedis

MASTER = "taskq"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 6000
READY_WITHIN = 30.0
PROMOTED_WITHIN = 30.0


class TopologyError(RuntimeError):
    """The topology did not reach the state we waited for within its deadline."""


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> float:
    """Poll `condition` (errors count as not yet) until it is truthy; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            if condition():
                return time.monotonic() - started
        time.sleep(every)
    raise TopologyError(f"not within {timeout:.0f} s: {what}")


@dataclass
class Failover:
    """One failover: the old and new primary, when it began (monotonic) and how long promotion took."""

    old: PrivateRedis
    new: PrivateRedis
    began: float
    promoted: float
    paused: bool = False


class SentinelTopology:
    """1 primary + `replicas` replicas (AOF on) + `sentinels` sentinels, all on 127.0.0.1.

    `min_replicas=(to_write, max_lag)` sets `min-replicas-to-write` / `min-replicas-max-lag` on
    every data node (a replica promoted later enforces it too). `data_args` go to every data node.
    """

    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        quorum: int = 2,
        min_replicas: tuple[int, int] | None = None,
        appendfsync: str = "everysec",
        data_args: Sequence[str] = (),
        down_after_ms: int = DOWN_AFTER_MS,
    ) -> None:
        self.down_after_ms = down_after_ms
        self.expected_replicas = replicas
        args = ["--appendonly", "yes", "--appendfsync", appendfsync, *data_args]
        if min_replicas is not None:
            args += ["--min-replicas-to-write", str(min_replicas[0])]
            args += ["--min-replicas-max-lag", str(min_replicas[1])]
        self.nodes = [PrivateRedis(*args) for _ in range(1 + replicas)]
        self.quorum = quorum
        self.sentinel_count = sentinels
        self.sentinels: list[PrivateRedis] = []
        self.failovers = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SentinelTopology:
        """Start everything and wait until the sentinels agree on the primary and see every replica."""
        try:
            primary, *replicas = self.nodes
            primary.start()
            for node in replicas:
                node.start_with("--replicaof", "127.0.0.1", str(primary.port))
            wait_until(lambda: self._online_replicas(primary) == len(replicas), READY_WITHIN, "in sync")
            config = (
                f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} {self.quorum}\n"
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.sentinels = [PrivateRedis(config=config) for _ in range(self.sentinel_count)]
            for node in self.sentinels:
                node.start_with("--sentinel")
            self.wait_agreed(primary.port, replicas=len(replicas))
            return self
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every server by its pid (a paused one is thawed first) and remove its folder."""
        for node in [*self.sentinels, *self.nodes]:
            with contextlib.suppress(OSError):
                node.resume()
            node.remove()

    def __enter__(self) -> SentinelTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- where things are ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The REDIS_URL of this topology: `redis+sentinel://127.0.0.1:p1,.../taskq/0`."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def client(self) -> redis.Redis:
        """A client of whichever node is the primary now (through the sentinels)."""
        return master_client(self.url, socket_timeout=5, socket_connect_timeout=2)

    def remove(self) -> None:
        self.close()

    def sentinel_views(self) -> list[int | None]:
        """The primary's port according to each sentinel (None: that one does not answer)."""
        views: list[int | None] = []
        for node in self.sentinels:
            try:
                address = node.client_with(timeout=1).sentinel_get_master_addr_by_name(MASTER)
                views.append(int(address[1]) if address else None)
            except redis.exceptions.RedisError:
                views.append(None)
        return views

    def sentinel_failovers(self) -> int:
        """Failovers the sentinels have carried out (their config epoch): ours, and any they started
        on their own because a live primary missed `down-after-milliseconds` (a loaded host)."""
        epochs = [0]
        for node in self.sentinels:
            with contextlib.suppress(redis.exceptions.RedisError):
                epochs.append(int(node.client_with(timeout=1).sentinel_master(MASTER)["config-epoch"]))
        return max(epochs)

    def primary(self) -> PrivateRedis:
        """The data node that every sentinel names as primary (raises if they disagree)."""
        views = set(self.sentinel_views())
        if len(views) != 1 or None in views:
            raise TopologyError(f"sentinels disagree on the primary: {sorted(map(str, views))}")
        port = views.pop()
        return next(node for node in self.nodes if node.port == port)

    def wait_agreed(self, port: int, replicas: int, timeout: float = READY_WITHIN) -> float:
        """Wait until every sentinel names `port` as primary, sees `replicas` live replicas and its peers."""

        def agreed() -> bool:
            for node in self.sentinels:
                client = node.client_with(timeout=1)
                state = client.sentinel_master(MASTER)
                if int(state["port"]) != port or state["is_sdown"] or state["is_odown"]:
                    return False
                if int(state["num-other-sentinels"]) < self.sentinel_count - 1:
                    return False
                live = [
                    r
                    for r in client.sentinel_slaves(MASTER)
                    if not r["is_sdown"] and r.get("master-link-status") == "ok"
                ]
                if len(live) < replicas:
                    return False
            return self._role(port) == "master"

        return wait_until(agreed, timeout, f"sentinels agree on primary :{port} with {replicas} replicas")

    # -- breaking it --------------------------------------------------------------------------

    def failover(self) -> Failover:
        """SIGKILL the primary and wait until every sentinel names a promoted replica that answers.

        The old primary stays down: `rejoin(result)` restarts it as a replica of the new one.
        """
        old = self.primary()
        old.kill()
        killed = time.monotonic()
        new = self._wait_promoted(old.port)
        self.failovers += 1
        return Failover(old, new, killed, time.monotonic() - killed)

    def pause_failover(self) -> Failover:
        """SIGSTOP the primary until a replica is promoted, then SIGCONT it.

        It comes back believing it is still the primary and answers the clients still connected
        to it (what they sent while it was frozen, and more) until the sentinels demote it, about
        8 s later; then it resyncs from the new primary, and what it took meanwhile is gone.
        `rejoin(result)` waits for that.
        """
        old = self.primary()
        old.pause()
        paused = time.monotonic()
        try:
            new = self._wait_promoted(old.port)
        finally:
            old.resume()
        self.failovers += 1
        return Failover(old, new, paused, time.monotonic() - paused, paused=True)

    def rejoin(self, failover: Failover, timeout: float = READY_WITHIN) -> None:
        """Bring the old primary back as a replica of the new one (a killed one is restarted with
        `--replicaof`; a thawed one is demoted by the sentinels, ~8 s after it answers again) and
        wait until it is in sync. The sentinels learn that within their 10 s INFO period; the
        next failover does not wait for that (they promote the other replica meanwhile)."""
        old, new = failover.old, failover.new
        if not failover.paused:
            old.start_with("--replicaof", "127.0.0.1", str(new.port))

        def in_sync() -> bool:
            info = old.client_with(timeout=1).info("replication")
            return bool(
                info["role"] == "slave"
                and int(info["master_port"]) == new.port
                and info["master_link_status"] == "up"
            )

        wait_until(in_sync, timeout, f"old primary :{old.port} in sync with :{new.port}")
        self.wait_agreed(new.port, replicas=self.expected_replicas - 1, timeout=timeout)

    def _wait_promoted(self, old_port: int, timeout: float = PROMOTED_WITHIN) -> PrivateRedis:
        def promoted() -> bool:
            views = set(self.sentinel_views())
            if len(views) != 1:
                return False
            port = next(iter(views))
            return port is not None and port != old_port and self._role(port) == "master"

        wait_until(promoted, timeout, f"a replica promoted after primary :{old_port} died", every=0.02)
        return self.primary()

    def _role(self, port: int) -> str:
        node = next(node for node in self.nodes if node.port == port)
        return str(node.client_with(timeout=1).execute_command("ROLE")[0].decode())

    @staticmethod
    def _online_replicas(node: PrivateRedis) -> int:
        info = node.client_with(timeout=1).info("replication")
        return sum(
            1
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
        )
