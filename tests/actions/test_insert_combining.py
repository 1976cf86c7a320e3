"""Single actions of concurrent requests share one insert statement.

The first tests drive `InsertCombiner` with a stand-in for the insert, so
the moments of each call are under the test's control; the last ones run
the real statement on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connections

from actions.combining import InsertCombiner

MOMENT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WAIT_SECONDS = 10


class GatedInsert:
    """Records each statement; the first one waits until the test opens the gate."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.statements: list[tuple[list[uuid.UUID], str]] = []
        self.first_started = threading.Event()
        self.gate = threading.Event()
        self.fail_with = fail_with

    def __call__(self, event_ids, payloads):
        self.statements.append((list(event_ids), threading.current_thread().name))
        if len(self.statements) == 1:
            self.first_started.set()
            assert self.gate.wait(WAIT_SECONDS), "the test never opened the gate"
            if self.fail_with is not None:
                raise self.fail_with
        rows = {event_id: (number, number) for number, event_id in enumerate(event_ids)}
        return rows, MOMENT


def queued(combiner: InsertCombiner, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(combiner._queue) < count:
        assert time.monotonic() < deadline, f"{count} calls never queued"
        time.sleep(0.005)


def call_in_thread(pool, combiner, event_ids):
    return pool.submit(combiner.insert, event_ids, [f'"{e}"' for e in event_ids])


def test_a_lone_call_writes_at_once_in_its_own_thread():
    insert = GatedInsert()
    insert.gate.set()
    combiner = InsertCombiner(insert)
    event_id = uuid.uuid4()

    rows, moment = combiner.insert([event_id], ['"x"'])

    assert rows[event_id] == (0, 0)
    assert moment == MOMENT
    assert insert.statements == [([event_id], threading.current_thread().name)]


def test_calls_that_arrive_during_an_insert_share_the_next_statement():
    insert = GatedInsert()
    combiner = InsertCombiner(insert)
    first, *others = [uuid.uuid4() for _ in range(4)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        leader = call_in_thread(pool, combiner, [first])
        assert insert.first_started.wait(WAIT_SECONDS)
        followers = [call_in_thread(pool, combiner, [e]) for e in others]
        queued(combiner, len(others))
        insert.gate.set()
        results = [f.result(WAIT_SECONDS) for f in [leader, *followers]]

    assert [ids for ids, _ in insert.statements] == [[first], others]
    assert combiner.statements == 2
    assert combiner.requests == 4
    # Every caller sees the rows of its own statement.
    assert first in results[0][0]
    for event_id, (rows, _) in zip(others, results[1:], strict=True):
        assert set(rows) == set(others)
        assert event_id in rows


def test_the_next_statement_is_written_by_one_of_its_own_callers():
    insert = GatedInsert()
    combiner = InsertCombiner(insert)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="caller") as pool:
        leader = call_in_thread(pool, combiner, [uuid.uuid4()])
        assert insert.first_started.wait(WAIT_SECONDS)
        follower = call_in_thread(pool, combiner, [uuid.uuid4()])
        queued(combiner, 1)
        insert.gate.set()
        leader.result(WAIT_SECONDS)
        follower.result(WAIT_SECONDS)

    first_thread, second_thread = (thread for _, thread in insert.statements)
    assert first_thread != second_thread
    assert {first_thread, second_thread} <= {f"caller_{number}" for number in range(2)}


def test_one_event_id_never_appears_twice_in_a_statement():
    insert = GatedInsert()
    combiner = InsertCombiner(insert)
    repeated, other = uuid.uuid4(), uuid.uuid4()

    with ThreadPoolExecutor(max_workers=4) as pool:
        leader = call_in_thread(pool, combiner, [uuid.uuid4()])
        assert insert.first_started.wait(WAIT_SECONDS)
        calls = [
            call_in_thread(pool, combiner, [repeated]),
            call_in_thread(pool, combiner, [repeated]),
            call_in_thread(pool, combiner, [other]),
        ]
        queued(combiner, 3)
        insert.gate.set()
        for future in [leader, *calls]:
            future.result(WAIT_SECONDS)

    later = [ids for ids, _ in insert.statements[1:]]
    assert later == [[repeated, other], [repeated]]


def test_a_failed_statement_fails_only_its_own_callers():
    insert = GatedInsert(fail_with=OperationalError("server closed the connection"))
    combiner = InsertCombiner(insert)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            combiner.insert([uuid.uuid4()], ['"x"'])
        except OperationalError as error:
            errors.append(error)

    with ThreadPoolExecutor(max_workers=3) as pool:
        leader = pool.submit(call)
        assert insert.first_started.wait(WAIT_SECONDS)
        follower = pool.submit(call)
        queued(combiner, 1)
        insert.gate.set()
        leader.result(WAIT_SECONDS)
        follower.result(WAIT_SECONDS)

    # The first statement failed for its one caller; the follower's own
    # statement came after it and succeeded.
    assert len(errors) == 1
    assert str(errors[0]) == "server closed the connection"


def test_callers_of_a_failed_statement_each_raise_and_the_next_call_works():
    failure = OperationalError("server closed the connection")
    first_ids = []
    gate = threading.Event()
    statements = []

    def insert(event_ids, payloads):
        statements.append(list(event_ids))
        if len(statements) == 1:
            # The first statement waits until two more calls have queued,
            # then the second statement (theirs) fails.
            assert gate.wait(WAIT_SECONDS)
        elif len(statements) == 2:
            raise failure
        return dict.fromkeys(event_ids, (1, 1)), MOMENT

    combiner = InsertCombiner(insert)
    errors: list[BaseException] = []

    def call(event_id) -> None:
        try:
            combiner.insert([event_id], ['"x"'])
        except OperationalError as error:
            errors.append(error)

    with ThreadPoolExecutor(max_workers=3) as pool:
        first_ids.append(uuid.uuid4())
        leader = pool.submit(call, first_ids[0])
        deadline = time.monotonic() + WAIT_SECONDS
        while not statements:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        followers = [pool.submit(call, uuid.uuid4()) for _ in range(2)]
        queued(combiner, 2)
        gate.set()
        for future in [leader, *followers]:
            future.result(WAIT_SECONDS)

    assert len(statements) == 2
    assert len(errors) == 2
    assert errors[0] is not errors[1]
    assert all(error.__cause__ is failure for error in errors)
    # Nothing is left busy: a lone call afterwards writes at once.
    rows, _ = combiner.insert([uuid.uuid4()], ['"x"'])
    assert len(rows) == 1
    assert combiner.statements == 3


# --- On PostgreSQL --------------------------------------------------------------


@pytest.fixture
def gated_store(monkeypatch):
    """store_actions with a combiner whose first statement waits for a gate."""
    from actions import store

    gate = threading.Event()
    started = threading.Event()
    calls = []

    def insert(event_ids, payloads):
        calls.append(len(event_ids))
        if len(calls) == 1:
            started.set()
            assert gate.wait(WAIT_SECONDS)
        return store._insert(event_ids, payloads)

    combiner = InsertCombiner(insert)
    monkeypatch.setattr(store, "_combiner", combiner)
    return combiner, gate, started, calls


def store_one(user_id: int, event_id: uuid.UUID, value: str = "1.00"):
    from decimal import Decimal

    from actions.store import ActionDraft, store_actions

    try:
        draft = ActionDraft(
            user_id=user_id,
            action_type="spin",
            action_timestamp=MOMENT,
            value=Decimal(value),
            event_id=event_id,
        )
        (record,) = store_actions([draft])
        return record
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_combined_requests_each_get_their_own_stored_row(alice, bob, gated_store):
    from actions.models import UserAction

    combiner, gate, started, calls = gated_store
    users = [alice.pk, bob.pk, alice.pk, bob.pk]
    event_ids = [uuid.uuid4() for _ in users]

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        first = pool.submit(store_one, users[0], event_ids[0])
        assert started.wait(WAIT_SECONDS)
        rest = [
            pool.submit(store_one, user, event_id)
            for user, event_id in zip(users[1:], event_ids[1:], strict=True)
        ]
        queued(combiner, len(rest))
        gate.set()
        records = [future.result(WAIT_SECONDS) for future in [first, *rest]]

    assert calls == [1, 3]
    stored = {action.event_id: action for action in UserAction.objects.all()}
    assert set(stored) == set(event_ids)
    for record, user_id, event_id in zip(records, users, event_ids, strict=True):
        row = stored[event_id]
        assert record.created
        assert (record.id, record.user_id, record.event_id) == (
            row.id,
            user_id,
            event_id,
        )
        assert record.created_at == row.created_at


@pytest.mark.django_db(transaction=True)
def test_a_resend_queued_with_its_first_post_is_answered_as_a_resend(
    alice, gated_store
):
    from actions.models import UserAction

    combiner, gate, started, calls = gated_store
    repeated = uuid.uuid4()

    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(store_one, alice.pk, uuid.uuid4())
        assert started.wait(WAIT_SECONDS)
        twins = [pool.submit(store_one, alice.pk, repeated) for _ in range(2)]
        queued(combiner, 2)
        gate.set()
        first.result(WAIT_SECONDS)
        records = [future.result(WAIT_SECONDS) for future in twins]

    assert sorted(record.created for record in records) == [False, True]
    assert records[0].id == records[1].id
    assert UserAction.objects.filter(event_id=repeated).count() == 1
    assert calls == [1, 1, 1]
