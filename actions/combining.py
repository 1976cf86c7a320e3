"""One insert statement for the single actions of concurrent requests.

Under load, several threads of a web worker store one action each at about
the same moment. Each insert alone pays a round trip, a statement, a
commit and a WAL flush, which cost PostgreSQL more than the row itself.
`InsertCombiner` lets them share: while one thread's insert is in flight,
the threads that arrive queue their rows, and when it returns the first of
them writes the whole queue in one statement for everyone (a leader hands
over to a follower; nobody waits for a timer). One thread alone never
waits: it finds no insert in flight and writes at once.

What each request sees does not change. The statement is the same
`INSERT ... ON CONFLICT DO NOTHING` that one request runs, and each thread
reads its own rows from the shared result and carries on as before (the
resend and inactive-user checks, the fast path, the streaks). Rows of one
statement commit together, so a database error reaches every request of
that statement, as a 503 that stored nothing. Two queued rows with the same
`event_id` never share a statement: the later one waits for the next, where
it finds the first stored, as a resend racing the first would.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# What an insert returns: {event_id: (action id, outbox id)} for the rows it
# stored, and the moment it stored them at (their created_at).
Inserted = tuple[dict[uuid.UUID, tuple[int, int]], datetime]
# insert(event_ids, payloads): stores the JSON events `payloads`.
InsertRows = Callable[[Sequence[uuid.UUID], Sequence[str]], Inserted]

# Enough for every thread of a worker; a longer queue waits for the next.
MAX_REQUESTS_PER_STATEMENT = 64


@dataclass(eq=False)
class _Waiter:
    event_ids: Sequence[uuid.UUID]
    payloads: Sequence[str]
    done: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: Inserted | None = None
    error: BaseException | None = None


class InsertCombiner:
    """Combines the concurrent `insert` calls of one process (see above)."""

    def __init__(self, insert_rows: InsertRows) -> None:
        self._insert_rows = insert_rows
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False
        # Statements written and requests they served, for the tests and
        # for anyone measuring how much combining happens.
        self.statements = 0
        self.requests = 0

    def insert(
        self, event_ids: Sequence[uuid.UUID], payloads: Sequence[str]
    ) -> Inserted:
        """Store `payloads` (the JSON events of `event_ids`), maybe with others'."""
        waiter = _Waiter(event_ids, payloads)
        with self._lock:
            self._queue.append(waiter)
            leads = not self._busy
            self._busy = True
        if not leads:
            waiter.done.wait()
            if not waiter.leads:
                return _outcome(waiter)
        self._lead()
        return _outcome(waiter)

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = _take(self._queue)
        try:
            result = self._insert_rows(
                [event_id for waiter in batch for event_id in waiter.event_ids],
                [payload for waiter in batch for payload in waiter.payloads],
            )
        except BaseException as error:
            for waiter in batch:
                waiter.error = error
        else:
            for waiter in batch:
                waiter.result = result
        finally:
            with self._lock:
                self.statements += 1
                self.requests += len(batch)
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.leads = True
            for waiter in batch:
                waiter.done.set()
            if successor is not None:
                successor.done.set()


def _take(queue: list[_Waiter]) -> tuple[list[_Waiter], list[_Waiter]]:
    """The waiters one statement can serve, and the ones left for the next."""
    batch: list[_Waiter] = []
    left: list[_Waiter] = []
    event_ids: set[uuid.UUID] = set()
    for waiter in queue:
        if len(batch) >= MAX_REQUESTS_PER_STATEMENT or event_ids.intersection(
            waiter.event_ids
        ):
            left.append(waiter)
            continue
        batch.append(waiter)
        event_ids.update(waiter.event_ids)
    return batch, left


def _outcome(waiter: _Waiter) -> Inserted:
    if waiter.error is not None:
        # Each thread raises its own copy: one exception object raised in
        # several threads at once would mix their tracebacks.
        try:
            duplicate = copy.copy(waiter.error)
        except Exception:
            raise waiter.error from None
        raise duplicate from waiter.error
    assert waiter.result is not None
    return waiter.result
