"""Single actions of concurrent requests share one insert statement.

The first tests drive `InsertCombiner` with a stand-in for the insert, so
the moments of each call are under the test's control; the last ones run
the real statement on PostgreSQL. Calls run in daemon threads and every
wait is bounded, so a hand-over that loses a thread fails the test instead
of hanging the run.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection, connections, transaction

from actions.combining import InsertCombiner
from tests.helpers import side_session

MOMENT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WAIT_SECONDS = 10


def in_thread(function, *args, name: str | None = None) -> Future:
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


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


def call(combiner, event_ids, name: str | None = None) -> Future:
    payloads = [f'"{event_id}"' for event_id in event_ids]
    return in_thread(combiner.insert, event_ids, payloads, name=name)


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

    leader = call(combiner, [first])
    assert insert.first_started.wait(WAIT_SECONDS)
    followers = [call(combiner, [event_id]) for event_id in others]
    queued(combiner, len(others))
    insert.gate.set()
    results = [future.result(WAIT_SECONDS) for future in [leader, *followers]]

    assert [ids for ids, _ in insert.statements] == [[first], others]
    assert (combiner.statements, combiner.requests) == (2, 4)
    # Every caller sees the rows of its own statement.
    assert first in results[0][0]
    for event_id, (rows, _) in zip(others, results[1:], strict=True):
        assert set(rows) == set(others)
        assert event_id in rows


def test_the_next_statement_is_written_by_one_of_its_own_callers():
    insert = GatedInsert()
    combiner = InsertCombiner(insert)

    leader = call(combiner, [uuid.uuid4()], name="caller-1")
    assert insert.first_started.wait(WAIT_SECONDS)
    follower = call(combiner, [uuid.uuid4()], name="caller-2")
    queued(combiner, 1)
    insert.gate.set()
    leader.result(WAIT_SECONDS)
    follower.result(WAIT_SECONDS)

    assert [thread for _, thread in insert.statements] == ["caller-1", "caller-2"]


def test_one_event_id_never_appears_twice_in_a_statement():
    insert = GatedInsert()
    combiner = InsertCombiner(insert)
    repeated, other = uuid.uuid4(), uuid.uuid4()

    leader = call(combiner, [uuid.uuid4()])
    assert insert.first_started.wait(WAIT_SECONDS)
    calls = [
        call(combiner, [repeated]),
        call(combiner, [repeated]),
        call(combiner, [other]),
    ]
    queued(combiner, 3)
    insert.gate.set()
    for future in [leader, *calls]:
        future.result(WAIT_SECONDS)

    later = [ids for ids, _ in insert.statements[1:]]
    assert later == [[repeated, other], [repeated]]


def test_calls_queued_behind_a_stuck_statement_write_alone():
    insert = GatedInsert()
    combiner = InsertCombiner(insert, patience_seconds=0.05)
    waiting = [uuid.uuid4(), uuid.uuid4()]

    stuck = call(combiner, [uuid.uuid4()])
    assert insert.first_started.wait(WAIT_SECONDS)
    behind = [call(combiner, [event_id]) for event_id in waiting]
    results = [future.result(WAIT_SECONDS) for future in behind]

    # Both finished while the first statement was still stuck.
    assert not stuck.done()
    assert sorted(ids[0] for ids, _ in insert.statements[1:]) == sorted(waiting)
    assert [set(rows) for rows, _ in results] == [{e} for e in waiting]
    insert.gate.set()
    stuck.result(WAIT_SECONDS)
    # Nothing is left queued or busy: a lone call writes at once.
    combiner.insert([uuid.uuid4()], ['"x"'])
    assert combiner._queue == []
    assert len(insert.statements) == 4


def test_a_failed_statement_fails_only_its_own_callers():
    insert = GatedInsert(fail_with=OperationalError("server closed the connection"))
    combiner = InsertCombiner(insert)

    leader = call(combiner, [uuid.uuid4()])
    assert insert.first_started.wait(WAIT_SECONDS)
    follower = call(combiner, [uuid.uuid4()])
    queued(combiner, 1)
    insert.gate.set()

    with pytest.raises(OperationalError, match="server closed the connection"):
        leader.result(WAIT_SECONDS)
    # The follower's statement came after the failed one, and succeeded.
    assert len(follower.result(WAIT_SECONDS)[0]) == 1


class SharedFailure:
    """The first statement waits for a gate; the second, shared one fails."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.gate = threading.Event()
        self.statements: list[tuple[list[uuid.UUID], str]] = []

    def __call__(self, event_ids, payloads):
        self.statements.append((list(event_ids), threading.current_thread().name))
        if len(self.statements) == 1:
            assert self.gate.wait(WAIT_SECONDS)
        elif len(self.statements) == 2:
            raise self.failure
        return dict.fromkeys(event_ids, (1, 1)), MOMENT


def run_shared_failure(combiner: InsertCombiner, insert: SharedFailure) -> list:
    first = call(combiner, [uuid.uuid4()], name="first")
    deadline = time.monotonic() + WAIT_SECONDS
    while not insert.statements:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    sharing = [call(combiner, [uuid.uuid4()], name=f"mate-{n}") for n in range(2)]
    queued(combiner, 2)
    insert.gate.set()
    first.result(WAIT_SECONDS)
    outcomes = []
    for future in sharing:
        try:
            outcomes.append(future.result(WAIT_SECONDS))
        except Exception as error:
            outcomes.append(error)
    return outcomes


def test_callers_of_a_failed_shared_statement_each_write_alone_again():
    insert = SharedFailure(OperationalError("server closed the connection"))
    combiner = InsertCombiner(insert, retry_alone_on=(OperationalError,))

    outcomes = run_shared_failure(combiner, insert)

    assert all(isinstance(outcome, tuple) for outcome in outcomes)
    shared, *alone = insert.statements[1:]
    assert len(shared[0]) == 2
    # Each wrote its own row again, in its own thread.
    assert sorted(thread for _, thread in alone) == ["mate-0", "mate-1"]
    assert sorted(ids[0] for ids, _ in alone) == sorted(shared[0])


def test_other_errors_reach_each_caller_as_its_own_copy():
    failure = ValueError("a bug in the statement")
    insert = SharedFailure(failure)
    combiner = InsertCombiner(insert, retry_alone_on=(OperationalError,))

    errors = run_shared_failure(combiner, insert)

    assert all(isinstance(error, ValueError) for error in errors)
    assert errors[0] is not errors[1]
    assert all(error.__cause__ is failure for error in errors)
    assert all(str(error) == "a bug in the statement" for error in errors)
    assert len(insert.statements) == 2
    # Nothing is left busy: a lone call afterwards writes at once.
    rows, _ = combiner.insert([uuid.uuid4()], ['"x"'])
    assert len(rows) == 1


class NeedsKeyword(Exception):
    def __init__(self, *, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def test_an_error_that_cannot_be_rebuilt_still_reaches_each_caller():
    failure = NeedsKeyword(detail="odd constructor")
    insert = SharedFailure(failure)
    combiner = InsertCombiner(insert)

    errors = run_shared_failure(combiner, insert)

    assert errors[0] is not errors[1]
    for error in errors:
        assert isinstance(error, NeedsKeyword)
        assert error.detail == "odd constructor"
        assert error.__cause__ is failure


# --- On PostgreSQL --------------------------------------------------------------


@pytest.fixture
def gated_store(monkeypatch):
    """store_actions with a combiner whose first statement waits for a gate.

    `on_shared` runs in the leader's thread before a statement that carries
    more than one action.
    """
    from actions import store

    gate = threading.Event()
    started = threading.Event()
    calls = []
    hooks = {"on_shared": None}

    def insert(event_ids, payloads):
        calls.append(len(event_ids))
        if len(calls) == 1:
            started.set()
            assert gate.wait(WAIT_SECONDS)
        if len(event_ids) > 1 and hooks["on_shared"] is not None:
            hooks["on_shared"]()
        return store._insert(event_ids, payloads)

    combiner = InsertCombiner(insert, retry_alone_on=(OperationalError,))
    monkeypatch.setattr(store, "_combiner", combiner)
    return combiner, gate, started, calls, hooks


def store_one(user_id: int, event_id: uuid.UUID):
    from actions.store import ActionDraft, store_actions

    try:
        draft = ActionDraft(
            user_id=user_id,
            action_type="spin",
            action_timestamp=MOMENT,
            event_id=event_id,
        )
        (record,) = store_actions([draft])
        return record
    finally:
        connections.close_all()


def start_behind_a_gate(gated_store, user_ids, event_ids) -> list[Future]:
    """The first call holds the gate; the rest queue behind it; then it opens."""
    combiner, gate, started, _, _ = gated_store
    first = in_thread(store_one, user_ids[0], event_ids[0])
    assert started.wait(WAIT_SECONDS)
    rest = [
        in_thread(store_one, user_id, event_id)
        for user_id, event_id in zip(user_ids[1:], event_ids[1:], strict=True)
    ]
    queued(combiner, len(rest))
    gate.set()
    return [first, *rest]


@pytest.mark.django_db(transaction=True)
def test_combined_requests_each_get_their_own_stored_row(alice, bob, gated_store):
    from actions.models import UserAction

    calls = gated_store[3]
    users = [alice.pk, bob.pk, alice.pk, bob.pk]
    event_ids = [uuid.uuid4() for _ in users]

    futures = start_behind_a_gate(gated_store, users, event_ids)
    records = [future.result(WAIT_SECONDS) for future in futures]

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

    calls = gated_store[3]
    repeated = uuid.uuid4()

    futures = start_behind_a_gate(
        gated_store, [alice.pk] * 3, [uuid.uuid4(), repeated, repeated]
    )
    first, *twins = [future.result(WAIT_SECONDS) for future in futures]

    assert first.created

    assert sorted(record.created for record in twins) == [False, True]
    assert twins[0].id == twins[1].id
    assert UserAction.objects.filter(event_id=repeated).count() == 1
    assert calls == [1, 1, 1]


@pytest.mark.django_db(transaction=True)
def test_a_leader_whose_connection_broke_fails_alone(alice, bob, gated_store):
    from actions.models import UserAction

    hooks = gated_store[4]

    def break_own_connection() -> None:
        # The server ends this thread's session, as a restart would.
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        with side_session() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        hooks["on_shared"] = None

    hooks["on_shared"] = break_own_connection
    users = [alice.pk, bob.pk, alice.pk]
    event_ids = [uuid.uuid4() for _ in users]

    futures = start_behind_a_gate(gated_store, users, event_ids)
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(WAIT_SECONDS).event_id)
        except OperationalError:
            outcomes.append("failed")

    # One of the two that shared the statement led it, on the broken
    # connection: it fails as it would have alone, the other is stored.
    assert outcomes[0] == event_ids[0]
    assert outcomes[1:].count("failed") == 1
    assert set(outcomes[1:]) - {"failed"} < set(event_ids[1:])
    stored = set(UserAction.objects.values_list("event_id", flat=True))
    assert stored == {outcome for outcome in outcomes if outcome != "failed"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["atomic", "setting off"])
def test_single_actions_do_not_combine(alice, gated_store, settings, where):
    from actions.models import UserAction
    from actions.store import ActionDraft, store_actions

    combiner = gated_store[0]
    gated_store[1].set()
    draft = ActionDraft(user_id=alice.pk, action_type="spin", action_timestamp=MOMENT)

    if where == "atomic":
        with transaction.atomic():
            store_actions([draft])
    else:
        settings.ACTIONS_COMBINE_INSERTS = False
        store_actions([draft])

    assert combiner.statements == 0
    assert UserAction.objects.filter(event_id=draft.event_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_caller_with_autocommit_off_never_leads_others(alice, gated_store):
    # Its open transaction would hold the others' rows, answered 201, and
    # roll them back with its own.
    from django.db.transaction import TransactionManagementError

    from actions.models import UserAction
    from actions.store import ActionDraft, store_actions

    combiner = gated_store[0]
    gated_store[1].set()
    draft = ActionDraft(user_id=alice.pk, action_type="spin", action_timestamp=MOMENT)

    transaction.set_autocommit(False)
    try:
        # Storing needs autocommit or atomic (for the after-commit work).
        with pytest.raises(TransactionManagementError):
            store_actions([draft])
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)

    assert combiner.statements == 0
    assert not UserAction.objects.exists()
