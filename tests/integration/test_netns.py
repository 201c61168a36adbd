"""The simulated hosts of `chaos.netns`: they skip cleanly where namespaces cannot be made, talk
to each other until a link is cut, and leave nothing behind (no namespace, no interface, no route)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from chaos import netns

pytestmark = pytest.mark.integration


def test_no_ip_command_means_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setattr(netns, "_checked", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    check = netns.available()
    assert not check and check.ok is False
    assert "`ip`" in check.reason


def test_not_root_means_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setattr(netns, "_checked", None)
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    check = netns.available()
    assert not check and "root" in check.reason


def test_a_row_skips_with_the_reason_where_namespaces_are_unavailable(monkeypatch):
    from chaos.topology import partition_60s

    monkeypatch.setattr(netns, "_checked", netns.Check(False, "no `ip` command (iproute2) on PATH"))
    row = partition_60s(1.0)
    assert row.skipped and row.passed and row.jobs == 0
    assert row.note == "skipped: no `ip` command (iproute2) on PATH"


def _connects(network: netns.Network, host: netns.Host, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
    return network.run(host, [sys.executable, "-c", probe], timeout=10) == 0


def _eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_hosts_talk_until_their_link_is_cut_and_nothing_is_left_behind():
    check = netns.available()
    if not check:
        pytest.skip(f"network namespaces unavailable here: {check.reason}")
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    with netns.Network() as network:
        near, far = network.host("near"), network.host("far")
        assert network.switch.startswith("tq-") and near.address == "10.231.0.1"
        listen = f"s = socket.create_server(({near.address!r}, 7000))"
        serve = f"import socket; {listen}; [s.accept() for _ in range(99)]"
        server = network.popen(near, [sys.executable, "-c", serve])
        try:
            assert _eventually(lambda: _connects(network, far, near.address, 7000))
            network.cut(far)
            assert not _connects(network, far, near.address, 7000)
            network.heal(far)
            assert _eventually(lambda: _connects(network, far, near.address, 7000))
        finally:
            server.kill()
            server.wait(timeout=10)
        routes = subprocess.run(
            ["ip", "-n", far.namespace, "route"], capture_output=True, text=True, timeout=10
        )
        assert "default" not in routes.stdout  # nothing a simulated host sends can leave
        tag = network.tag
    assert not [name for name in netns.leftovers() if name.startswith(tag)]
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    assert len(links_after.splitlines()) == len(links_before.splitlines())  # nothing in our own namespace
