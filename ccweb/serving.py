"""The gunicorn worker of the web process: gthread, with fair accepting.

Every gthread worker waits on the same listening socket, and whichever
wakes first accepts. A worker keeps accepting until it holds
`worker_connections` (1,000 by default) connections, so a burst of new
keep-alive connections can land on one or two workers. Their requests then
queue behind a few threads and one interpreter lock while the other workers
idle: on 2 cores, 32 connections all held by one worker served `/health`
at less than half the rate of the same connections spread out.

This worker stops accepting while every one of its threads has a request,
running or queued, and leaves new connections to a worker with a free
thread. When all are busy the connections wait in the listen backlog, as
they would wait in a worker's queue otherwise. Kept-alive connections stay
where they are, and `worker_connections` still caps each worker.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker


class FairThreadWorker(ThreadWorker):
    """A gthread worker that accepts only while it has a free thread."""

    # gthread's loop compares its connection count with this attribute before
    # each wait to decide whether to listen for new connections; answering
    # with the count itself while the threads are full stops it listening.
    @property
    def worker_connections(self) -> int:
        if self._requests_in_hand() >= self.cfg.threads:
            return self.nr_conns
        return self._connection_limit

    @worker_connections.setter
    def worker_connections(self, limit: int) -> None:
        self._connection_limit = limit

    def _requests_in_hand(self) -> int:
        # Connections neither idle in keep-alive nor waiting for a first
        # byte have a request in a thread or queued for one.
        return self.nr_conns - len(self.keepalived_conns) - len(self.pending_conns)
