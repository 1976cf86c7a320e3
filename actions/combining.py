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
statement commit together; when a shared statement fails on a database
error, which may be the leader's broken connection or another request's
row, each of its requests writes its rows again alone, on its own
connection, and keeps the outcome it would have had alone. Two queued rows
with the same `event_id` never share a statement: the later one waits for
the next, where it finds the first stored, as a resend racing the first
would.

What it can cost: a statement that waits for a lock (a resend whose first
insert is in a transaction still open, a user row being deleted) holds up
the requests whose rows it carries, up to the statement timeout. Requests
queued behind it wait `patience_seconds` and then write alone.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

# What an insert returns: {event_id: (action id, outbox id)} for the rows it
# stored, and the moment it stored them at (their created_at).
Inserted = tuple[dict[uuid.UUID, tuple[int, int]], datetime]
# insert(event_ids, payloads): stores the JSON events `payloads`.
InsertRows = Callable[[Sequence[uuid.UUID], Sequence[str]], Inserted]

# Enough for every thread of a worker; a longer queue waits for the next.
MAX_REQUESTS_PER_STATEMENT = 64
# An insert under load takes a few milliseconds; one that takes longer is
# waiting for a lock, and the calls queued behind it write alone instead.
PATIENCE_SECONDS = 0.2


@dataclass(eq=False)
class _Waiter:
    event_ids: Sequence[uuid.UUID]
    payloads: Sequence[str]
    done: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    # Taken into a statement; `shared` when others' rows were in it too.
    taken: bool = False
    shared: bool = False
    result: Inserted | None = None
    error: BaseException | None = None


class InsertCombiner:
    """Combines the concurrent `insert` calls of one process (see above).

    `retry_alone_on`: errors of a shared statement after which each of its
    callers writes its own rows again, alone, on its own connection. The
    statement rolled back whole, and the cause may have been another
    caller's row or the leader's connection.
    `patience_seconds`: how long a queued call waits for the statement in
    flight before it writes alone; a statement stuck on a lock then holds up
    only the calls it carries.
    """

    def __init__(
        self,
        insert_rows: InsertRows,
        *,
        retry_alone_on: tuple[type[BaseException], ...] = (),
        patience_seconds: float = PATIENCE_SECONDS,
    ) -> None:
        self._insert_rows = insert_rows
        self._retry_alone_on = retry_alone_on
        self._patience_seconds = patience_seconds
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
            if not waiter.done.wait(self._patience_seconds) and self._leave(waiter):
                return self._insert_rows(event_ids, payloads)
            waiter.done.wait()
            if not waiter.leads:
                return self._outcome(waiter)
        self._lead()
        return self._outcome(waiter)

    def _leave(self, waiter: _Waiter) -> bool:
        """Take `waiter` out of the queue, unless a statement has it already."""
        with self._lock:
            if waiter.taken or waiter.leads:
                return False
            self._queue.remove(waiter)
            return True

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

    def _outcome(self, waiter: _Waiter) -> Inserted:
        if waiter.error is None:
            # A finished statement sets its waiters' result or their error.
            return cast(Inserted, waiter.result)
        if waiter.shared and isinstance(waiter.error, self._retry_alone_on):
            return self._insert_rows(waiter.event_ids, waiter.payloads)
        # Each thread raises its own copy: one exception object raised in
        # several threads at once would mix their tracebacks.
        raise _own_copy(waiter.error) from waiter.error


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
    for waiter in batch:
        waiter.taken = True
        waiter.shared = len(batch) > 1
    return batch, left


def _own_copy(error: BaseException) -> BaseException:
    """A new exception of the same class and content, without its traceback."""
    try:
        duplicate = type(error).__new__(type(error), *error.args)
        duplicate.__dict__.update(vars(error))
    except Exception:
        # A class that cannot be rebuilt this way still reaches the caller
        # as the cause of this one.
        return RuntimeError(f"the shared insert statement failed: {error!r}")
    return duplicate
