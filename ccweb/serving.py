"""The gunicorn worker of the web process: gthread that spreads connections.

Every gthread worker waits on the same listening socket, and whichever
wakes first accepts. A worker keeps accepting until it holds
`worker_connections` (1,000 by default) connections, so a burst of new
keep-alive connections can land on one worker. Their requests then queue
behind its few threads and one interpreter lock while the other workers
idle: on 2 cores, 32 connections all held by one of 4 workers served
`GET /health` and the recommendation at less than half their usual rate.

This worker stops listening while every one of its threads has a request
in hand, so that a worker with a free thread takes the next connection.
It stops for at most `WEB_ACCEPT_HOLD_MS` (100 ms) at a stretch: when all
workers are busy, a freed thread goes straight to a kept-alive connection,
and without the bound a new connection (a health check, say) would wait in
the listen backlog until the load eased. After the hold the worker accepts
as plain gthread does, queueing the connection behind its threads, until
it has a free thread again.

A shortcoming that remains: when the server stops, connections still in
the listen backlog are reset, as with plain gthread; the hold lets up to
100 ms of new connections wait there instead of in a worker.
"""

from __future__ import annotations

import os
import time

from gunicorn.workers.gthread import ThreadWorker


def accept_hold_seconds() -> float:
    return int(os.environ.get("WEB_ACCEPT_HOLD_MS", "100")) / 1000


class SpreadingThreadWorker(ThreadWorker):
    """A gthread worker that leaves new connections to workers with a free thread."""

    def __init__(self, *args, **kwargs) -> None:
        self._full_since: float | None = None
        self._hold_seconds = accept_hold_seconds()
        super().__init__(*args, **kwargs)

    # gthread's loop compares its connection count with this attribute before
    # each wait to decide whether to listen for new connections; answering
    # with the count itself stops it listening.
    @property
    def worker_connections(self) -> int:
        if self._holding_back():
            return self.nr_conns
        return self._connection_limit

    @worker_connections.setter
    def worker_connections(self, limit: int) -> None:
        self._connection_limit = limit

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Wake when the hold ends even if nothing else happens meanwhile. Once
        # it has ended the worker listens, and waits as long as gthread does.
        if self._full_since is not None:
            hold_left = self._full_since + self._hold_seconds - time.monotonic()
            if hold_left > 0:
                timeout = min(timeout, hold_left)
        super().wait_for_and_dispatch_events(timeout)

    def _holding_back(self) -> bool:
        # Connections neither idle in keep-alive nor waiting for a first byte
        # have a request in a thread or queued for one.
        in_hand = self.nr_conns - len(self.keepalived_conns) - len(self.pending_conns)
        if in_hand < self.cfg.threads:
            self._full_since = None
            return False
        now = time.monotonic()
        if self._full_since is None:
            self._full_since = now
        return now - self._full_since < self._hold_seconds
