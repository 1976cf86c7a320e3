"""Workers with every thread busy leave new connections to the others, for a while.

Run against gunicorn itself (ccweb.serving.SpreadingThreadWorker under
docker/gunicorn.conf.py), since what is tested is how the subclass steers
gthread's own loop.
"""

import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from gunicorn.workers.gthread import ThreadWorker

from ccweb.serving import SpreadingThreadWorker
from tests.processes import start_gunicorn

WORKERS = 4
HOLD_MS = 400


def one_thread_workers(tmp_path: Path, workers: int, hold_ms: int):
    env = {
        **os.environ,
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": "1",
        "WEB_ACCEPT_HOLD_MS": str(hold_ms),
        "SECURE_SSL_REDIRECT": "false",
    }
    try:
        return start_gunicorn(tmp_path, env)
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture
def four_workers(tmp_path):
    # A hold longer than the test: no worker listens again while busy.
    process, base = one_thread_workers(tmp_path, WORKERS, hold_ms=10_000)
    yield process, base
    process.stop()


@pytest.fixture
def one_worker(tmp_path):
    process, base = one_thread_workers(tmp_path, 1, hold_ms=HOLD_MS)
    yield process, base
    process.stop()


def worker_pids(master_pid: int, expected: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
        pids = [int(pid) for pid in children.split()]
        if len(pids) == expected:
            return pids
        time.sleep(0.1)
    pytest.fail(f"gunicorn started {len(pids)} workers, not {expected}")


def server_side_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's socket for the client's connection, if accepted."""
    wanted = (f"{server_port:04X}", f"{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = fields[1].rsplit(":", 1)[1]
        remote_port = fields[2].rsplit(":", 1)[1]
        if (local_port, remote_port) == wanted:
            return int(fields[9])
    return None


def holder(pids: list[int], inode: int) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


def wait_for_holder(
    pids: list[int], server_port: int, client: socket.socket, seconds: float = 3
) -> int | None:
    client_port = client.getsockname()[1]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        inode = server_side_inode(server_port, client_port)
        # The kernel completes the handshake before any worker accepts; the
        # socket reaches a worker's file table only when one does.
        pid = holder(pids, inode) if inode else None
        if pid is not None:
            return pid
        time.sleep(0.02)
    return None


def test_a_worker_whose_threads_are_busy_leaves_new_connections(four_workers):
    process, base = four_workers
    port = int(base.rsplit(":", 1)[1])
    pids = worker_pids(process.pid, WORKERS)

    # A connection that sends nothing keeps its worker's only thread waiting
    # for the request line (gthread waits 5 s before it lets go).
    silent = []
    holders = []
    try:
        for _ in range(WORKERS):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            silent.append(client)
            holders.append(wait_for_holder(pids, port, client))
            assert holders[-1] is not None, "no worker accepted the connection"
    finally:
        for client in silent:
            client.close()

    # A plain gthread worker keeps accepting: four connections would spread
    # over all four workers only about one time in ten.
    assert sorted(holders) == sorted(pids)
    with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
        assert answer.status == 200


def test_a_busy_worker_listens_again_after_the_hold(one_worker):
    process, base = one_worker
    port = int(base.rsplit(":", 1)[1])
    pids = worker_pids(process.pid, 1)

    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    second = None
    try:
        assert wait_for_holder(pids, port, silent) is not None
        second = socket.create_connection(("127.0.0.1", port), timeout=5)
        waited = time.monotonic()
        # Held back while the only thread waits for the silent connection...
        early = wait_for_holder(pids, port, second, seconds=HOLD_MS / 2000)
        # ...and taken once the hold is over, long before gthread gives up
        # waiting for the silent connection's request (5 s).
        late = early or wait_for_holder(pids, port, second, seconds=2.5)
        accepted_after = time.monotonic() - waited
    finally:
        silent.close()
        if second is not None:
            second.close()

    assert early is None
    assert late is not None, "the busy worker never listened again"
    assert accepted_after < 3


class Config:
    threads = 4


def worker_holding(*, connections: int, kept_alive: int, waiting: int):
    # Only the attributes gthread's loop and the gate read are set.
    worker = SpreadingThreadWorker.__new__(SpreadingThreadWorker)
    worker.cfg = Config()
    worker._full_since = None
    worker._hold_seconds = 60.0
    worker.worker_connections = 1000
    worker.nr_conns = connections
    worker.keepalived_conns = [object()] * kept_alive
    worker.pending_conns = [object()] * waiting
    return worker


def accepts(worker: SpreadingThreadWorker) -> bool:
    # gthread's own test before each wait for events.
    return worker.nr_conns < worker.worker_connections


def test_idle_connections_leave_room_for_new_ones():
    assert accepts(worker_holding(connections=10, kept_alive=5, waiting=2))
    assert accepts(worker_holding(connections=0, kept_alive=0, waiting=0))


def test_a_request_for_each_thread_stops_accepting():
    assert not accepts(worker_holding(connections=10, kept_alive=6, waiting=0))
    assert not accepts(worker_holding(connections=9, kept_alive=2, waiting=0))


def test_a_full_worker_accepts_again_once_the_hold_is_over():
    worker = worker_holding(connections=10, kept_alive=6, waiting=0)
    assert not accepts(worker)

    worker._full_since -= 61

    assert accepts(worker)


def test_a_free_thread_starts_a_new_hold():
    worker = worker_holding(connections=10, kept_alive=6, waiting=0)
    assert not accepts(worker)
    worker._full_since -= 61
    worker.keepalived_conns.append(object())
    assert accepts(worker)

    worker.keepalived_conns.pop()

    assert not accepts(worker)


def test_the_configured_cap_still_holds():
    worker = worker_holding(connections=1000, kept_alive=999, waiting=0)

    assert not accepts(worker)


def test_the_wait_ends_with_the_hold_and_not_sooner_after_it(monkeypatch):
    timeouts = []
    monkeypatch.setattr(
        ThreadWorker,
        "wait_for_and_dispatch_events",
        lambda worker, timeout: timeouts.append(timeout),
    )
    worker = worker_holding(connections=10, kept_alive=6, waiting=0)
    worker._hold_seconds = 0.5
    assert not accepts(worker)

    worker.wait_for_and_dispatch_events(1.0)
    worker._full_since -= 1
    worker.wait_for_and_dispatch_events(1.0)

    assert 0 < timeouts[0] <= 0.5
    # An expired hold must not turn the loop into a busy poll.
    assert timeouts[1] == 1.0
