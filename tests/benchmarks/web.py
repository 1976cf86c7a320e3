"""P2, P3, P4: the HTTP paths under wrk, each beside its floor and the peer.

One gunicorn server serves every ccweb measurement of a run (same workers,
same settings), and the outbox relay runs beside it as it does when
deployed, so the cost of getting each event to Kafka is part of the figure.
The relay's backlog is drained before the next measurement starts, so one
measurement never pays for the previous one.
"""

from __future__ import annotations

import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.benchmarks import load, seed, servers
from tests.benchmarks.harness import (
    Check,
    RunSettings,
    Section,
    load_average,
    rate,
    ratio,
)
from tests.benchmarks.load import LoadResult, PreparedRequest
from tests.processes import Process

logger = logging.getLogger(__name__)

USERS = 64
REQUEST_VARIANTS = 2_000
BATCH_SIZE = 500
BATCH_BODIES = 16
BATCH_CONNECTIONS = 4
DRAIN_TIMEOUT_SECONDS = 180


def http_call(
    method: str, url: str, token: str = "", body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    # Only ever http://127.0.0.1:port URLs of the servers started here.
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw[:200].decode(errors="replace")


def command_exists(name: str) -> bool:
    from django.core.management import get_commands

    return name in get_commands()


def outbox_backlog() -> int | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('actions_outbox') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT count(*) FROM actions_outbox")
        return cursor.fetchone()[0]


class HttpStack:
    """The servers of the HTTP benchmarks, started on first use."""

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.work_dir = settings.work_dir
        self._ccweb: servers.HttpServer | None = None
        self._relay: Process | None = None
        self._peers: dict[bool, servers.HttpServer] = {}
        self._users: list[seed.BenchUser] | None = None
        self.peer_dir = servers.peer_dir()
        self.peer_error: str | None = None

    @property
    def ccweb(self) -> servers.HttpServer:
        if self._ccweb is None:
            self._ccweb = servers.start_ccweb(self.work_dir)
        return self._ccweb

    @property
    def relay_running(self) -> bool:
        return self._relay is not None and self._relay.alive()

    def ensure_relay(self) -> None:
        if self._relay is None and command_exists("relay_outbox"):
            self._relay = servers.start_relay(self.work_dir)

    def peer(self, with_kafka: bool) -> servers.HttpServer | None:
        if self.peer_dir is None:
            return None
        if with_kafka not in self._peers:
            try:
                self._peers[with_kafka] = servers.start_peer(
                    self.peer_dir, self.work_dir, with_kafka=with_kafka
                )
            except Exception as error:
                logger.exception("the peer did not start")
                self.peer_error = (
                    f"peer did not start ({type(error).__name__}; see the run's log)"
                )
                return None
        return self._peers[with_kafka]

    def warm_up(self, lines: list[PreparedRequest], expect_status: int) -> None:
        """Serve `lines` unmeasured, then let the relay empty the outbox."""
        seconds = self.settings.stack_warmup_seconds
        if not seconds:
            return
        requests_file = load.write_requests(self.work_dir / "stack-warm-up.tsv", lines)
        load.run_wrk(
            "ccweb stack warm-up",
            self.ccweb.base_url,
            requests_file,
            seconds=seconds,
            expect_status=expect_status,
        )
        self.wait_for_drain()

    def users(self) -> list[seed.BenchUser]:
        if self._users is None:
            self._users = seed.ensure_users(USERS)
        return self._users

    def wait_for_drain(self) -> dict[str, Any]:
        """Let the relay publish what the last load left behind."""
        backlog = outbox_backlog()
        started = time.monotonic()
        if backlog and self.relay_running:
            deadline = started + DRAIN_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                remaining = outbox_backlog()
                if not remaining:
                    break
                time.sleep(0.5)
        return {
            "backlog_after_load": backlog,
            "drain_seconds": round(time.monotonic() - started, 1),
            "backlog_left": outbox_backlog(),
        }

    def measure(
        self,
        server: servers.HttpServer,
        label: str,
        lines: list[PreparedRequest],
        expect_status: int,
        connections: int = load.CONNECTIONS,
    ) -> LoadResult:
        name = label.lower().replace(" ", "-").replace("/", "")
        requests_file = load.write_requests(self.work_dir / f"{name}.tsv", lines)
        return load.measure(
            label,
            server.base_url,
            requests_file,
            warmup_seconds=self.settings.warmup_seconds,
            seconds=self.settings.measure_seconds,
            expect_status=expect_status,
            connections=connections,
        )

    def stop(self) -> None:
        for server in [self._relay, self._ccweb, *self._peers.values()]:
            if server is not None:
                server.stop()
        self._relay = self._ccweb = None
        self._peers = {}


# --- Shared pieces of the sections ------------------------------------------------


def floor_check(
    what: str, measured: LoadResult, floor: LoadResult, share: float
) -> Check:
    value = ratio(measured.per_second, floor.per_second)
    return Check(
        what=what,
        measured=measured.summary(),
        floor=floor.summary(),
        ratio=value,
        target=f"≥ {share * 100:.0f} % of the floor",
        passed=value is not None and value >= share and measured.clean and floor.clean,
    )


def peer_check(
    what: str, measured: LoadResult, peer: LoadResult | None, missing: str
) -> Check:
    target = "≥ 1.0 x the peer at an equal or lower p99"
    if peer is None:
        return Check(what, measured.summary(), missing, None, target, None, "times")
    value = ratio(measured.per_second, peer.per_second)
    passed = (
        value is not None
        and value >= 1.0
        and measured.p99_us <= peer.p99_us
        and measured.clean
    )
    return Check(
        what, measured.summary(), peer.summary(), value, target, passed, "times"
    )


def drain_note(drain: dict[str, Any], relay_running: bool) -> str:
    """What the outbox held when the load stopped, and how fast it emptied."""
    text = (
        f"Outbox rows not yet published when the load stopped: "
        f"{drain['backlog_after_load']:,}"
    )
    if not drain["backlog_after_load"]:
        return text + "."
    if not relay_running:
        return text + "; no relay ran to publish them."
    return (
        text + f"; the relay emptied it in {drain['drain_seconds']} s "
        f"({drain['backlog_left']:,} left)."
    )


def best(runs: list[LoadResult]) -> LoadResult:
    return max(runs, key=lambda run: run.per_second)


def floors_note(floors: list[LoadResult]) -> str:
    figures = " and ".join(f"{run.per_second:,.0f} req/s" for run in floors)
    return (
        f"The floor was measured before and after the path ({figures}); the "
        "faster run counts."
    )


def health_lines() -> list[PreparedRequest]:
    return [PreparedRequest("GET", "/health")]


def missing_peer_text(stack: HttpStack) -> str:
    if stack.peer_dir is None:
        return "peer not found"
    return stack.peer_error or "peer not measured"


def base_notes(stack: HttpStack, load_before: str) -> list[str]:
    return [
        f"ccweb: {servers.web_setup()} (docker/gunicorn.conf.py), DEBUG off, "
        "JWT on every API request, PostgreSQL + Redis + Kafka on this machine; "
        + (
            "the outbox relay (`manage.py relay_outbox`) runs beside it."
            if stack.relay_running
            else "no outbox relay command exists yet, so none ran beside it."
        ),
        f"wrk: {load.THREADS} threads, {load.CONNECTIONS} connections, "
        f"{stack.settings.warmup_seconds} s warm-up, then "
        f"{stack.settings.measure_seconds} s measured, on loopback.",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_average()}.",
    ]


# --- P2: POST /api/actions -------------------------------------------------------


def action_lines(users: list[seed.BenchUser]) -> list[PreparedRequest]:
    rng = random.Random(2)
    lines = []
    for number in range(REQUEST_VARIANTS):
        user = users[number % len(users)]
        body = json.dumps(seed.action_body(user, rng), separators=(",", ":"))
        lines.append(PreparedRequest("POST", "/api/actions", user.token, body))
    return lines


def run_p2(stack: HttpStack) -> Section:
    section = Section("p2", "POST /api/actions under gunicorn")
    users = stack.users()
    status, answer = http_call(
        "POST",
        stack.ccweb.base_url + "/api/actions",
        users[0].token,
        seed.action_body(users[0], random.Random(0)),
    )
    if status != 201:
        return section.missing(
            f"POST /api/actions answered {status} ({str(answer)[:160]}), not 201"
        )

    stack.ensure_relay()
    # Read before the warm-up below, which loads the machine on purpose.
    load_before = load_average()
    lines = action_lines(users)
    # The broker starts with the run and compiles its produce path during
    # its first half minute of load: in trials its CPU per action fell by
    # half after that. Whoever came first would pay for it, so the stack
    # serves actions unmeasured first, as a broker that has been running
    # would be.
    stack.warm_up(lines, 201)
    floors = [stack.measure(stack.ccweb, "ccweb GET /health", health_lines(), 200)]
    measured = stack.measure(stack.ccweb, "ccweb POST /api/actions", lines, 201)
    drain = stack.wait_for_drain()
    floors.append(stack.measure(stack.ccweb, "ccweb GET /health", health_lines(), 200))
    floor = best(floors)

    peer_results: dict[str, LoadResult | None] = {}
    for with_kafka in (False, True):
        peer = stack.peer(with_kafka)
        name = "peer+kafka" if with_kafka else "peer"
        if peer is None:
            peer_results[name] = None
            continue
        if not with_kafka:
            peer_results["peer /health"] = stack.measure(
                peer, f"{name} GET /health", health_lines(), 200
            )
        peer_results[name] = stack.measure(
            peer, f"{name} POST /api/actions", lines, 201
        )

    missing = missing_peer_text(stack)
    section.checks = [
        floor_check(
            "POST /api/actions vs GET /health, same server", measured, floor, 0.40
        ),
        peer_check(
            "vs the peer's POST /api/actions, no Kafka (as published)",
            measured,
            peer_results.get("peer"),
            missing,
        ),
        peer_check(
            "vs the peer's POST /api/actions, with Kafka",
            measured,
            peer_results.get("peer+kafka"),
            missing,
        ),
    ]
    section.notes = base_notes(stack, load_before)
    section.notes.append(
        f"Before the first measurement the stack served the same actions for "
        f"{stack.settings.stack_warmup_seconds} s unmeasured: the broker starts "
        "with the run and needs about half a minute of load before its CPU per "
        "action settles, which would count against whichever side came first."
    )
    section.notes.append(floors_note(floors))
    peer_health = peer_results.get("peer /health")
    if peer_health is not None:
        section.notes.append(
            f"Peer: uvicorn, {servers.PEER_WORKERS} workers, no access log, same "
            f"PostgreSQL and Redis; its GET /health: {peer_health.summary()}. "
            "It stores the action and produces to Kafka fire-and-forget "
            "(`linger.ms` 5) when given a broker; no auth, no outbox."
        )
    section.notes.append(
        f"Each request acts as one of {len(users)} users with that user's token; "
        f"{REQUEST_VARIANTS:,} bodies vary in action type, value and metadata. "
        "The peer gets the very same requests."
    )
    if drain["backlog_after_load"] is not None:
        section.notes.append(drain_note(drain, stack.relay_running))
    section.raw = {
        "floors": [run.as_dict() for run in floors],
        "measured": measured.as_dict(),
        "peers": {k: v.as_dict() if v else None for k, v in peer_results.items()},
        "drain": drain,
        "web": servers.web_setup(),
    }
    return section


# --- P4: the recommendation ------------------------------------------------------


def recommendation_path(user: seed.BenchUser) -> str:
    return f"/api/user-segments/{user.id}/recommendation"


def run_p4(stack: HttpStack) -> Section:
    section = Section("p4", "GET /api/user-segments/{id}/recommendation")
    users = stack.users()
    seed.set_streaks(users)
    probe_user = users[0]
    status, answer = http_call(
        "GET", stack.ccweb.base_url + recommendation_path(probe_user), probe_user.token
    )
    if status != 200:
        return section.missing(
            f"the recommendation answered {status} ({str(answer)[:160]}), not 200"
        )
    if answer.get("streak_count") != probe_user.streak:
        section.notes.append(
            f"Check: user {probe_user.id} was given streak {probe_user.streak} but "
            f"the recommendation said {answer.get('streak_count')}."
        )

    load_before = load_average()
    lines = [
        PreparedRequest("GET", recommendation_path(user), user.token) for user in users
    ]
    floors = [stack.measure(stack.ccweb, "ccweb GET /health", health_lines(), 200)]
    measured = stack.measure(stack.ccweb, "ccweb GET recommendation", lines, 200)
    floors.append(stack.measure(stack.ccweb, "ccweb GET /health", health_lines(), 200))
    floor = best(floors)

    peer_result = None
    peer = stack.peer(with_kafka=False)
    if peer is not None:
        seed.seed_peer_segments(users)
        peer_status, _ = http_call(
            "GET", peer.base_url + recommendation_path(probe_user)
        )
        if peer_status == 200:
            peer_result = stack.measure(peer, "peer GET recommendation", lines, 200)
        else:
            stack.peer_error = f"the peer's recommendation answered {peer_status}"

    section.checks = [
        floor_check(
            "recommendation vs GET /health, same server", measured, floor, 0.60
        ),
        peer_check(
            "vs the peer's recommendation",
            measured,
            peer_result,
            missing_peer_text(stack),
        ),
    ]
    section.notes = base_notes(stack, load_before)
    section.notes.append(floors_note(floors))
    section.notes.append(
        f"{len(users)} users, each asking for their own id with their own token; "
        "they hold segments of every group and streaks of 1 to 9 days, the same "
        "in the peer's table and Redis key."
    )
    section.raw = {
        "floors": [run.as_dict() for run in floors],
        "measured": measured.as_dict(),
        "peer": peer_result.as_dict() if peer_result else None,
        "sample_answer": answer,
        "web": servers.web_setup(),
    }
    return section


# --- P3: POST /api/actions/batch and the COPY floor -------------------------------


def batch_events(user: seed.BenchUser, rng: random.Random) -> list[dict]:
    events = []
    for _ in range(BATCH_SIZE):
        event = seed.action_body(user, rng)
        del event["user_id"]
        events.append(event)
    return events


def copy_rows(bodies: list[tuple[seed.BenchUser, list[dict]]], count: int) -> list:
    """`count` rows cycling through the very events the batch load posted."""
    now = datetime.now(UTC)
    rows = []
    while len(rows) < count:
        for user, events in bodies:
            for event in events:
                rows.append(
                    (
                        user.id,
                        event["action_type"],
                        now,
                        event["value"],
                        json.dumps(event["metadata"]),
                        uuid.uuid4(),
                        now,
                    )
                )
                if len(rows) == count:
                    return rows
    return rows


def copy_floor(rows: list) -> float:
    """Seconds PostgreSQL COPY takes to store `rows` in user_actions."""
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"] or 5432,
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    ) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY user_actions (user_id, action_type, action_timestamp, value, "
                "metadata, event_id, created_at) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def run_p3(stack: HttpStack) -> Section:
    section = Section("p3", "POST /api/actions/batch, 500 events a request")
    users = stack.users()
    rng = random.Random(3)
    bodies = [
        (users[number % len(users)], batch_events(users[number % len(users)], rng))
        for number in range(BATCH_BODIES)
    ]
    status, answer = http_call(
        "POST",
        stack.ccweb.base_url + "/api/actions/batch",
        bodies[0][0].token,
        {"actions": bodies[0][1]},
    )
    if status != 201:
        return section.missing(
            f"POST /api/actions/batch answered {status} ({str(answer)[:160]}), not 201"
        )

    stack.ensure_relay()
    stack.wait_for_drain()
    load_before = load_average()
    lines = [
        PreparedRequest(
            "POST",
            "/api/actions/batch",
            user.token,
            json.dumps({"actions": events}, separators=(",", ":")),
        )
        for user, events in bodies
    ]
    measured = stack.measure(
        stack.ccweb,
        "ccweb POST /api/actions/batch",
        lines,
        201,
        connections=BATCH_CONNECTIONS,
    )
    events = measured.requests * BATCH_SIZE
    events_per_second = events / measured.seconds
    drain = stack.wait_for_drain()

    # Twice, with fresh event ids each time; the faster run counts, so a
    # vacuum or checkpoint after the load cannot slow the floor down.
    copy_runs = [copy_floor(copy_rows(bodies, events)) for _ in range(2)]
    copy_seconds = min(copy_runs)
    copy_rate = events / copy_seconds

    value = ratio(events_per_second, copy_rate)
    measured_text = (
        f"{rate(events_per_second, 'events/s')} ({measured.per_second:,.1f} req/s, "
        f"p50 {measured.p50_us / 1000:.0f} ms, p99 {measured.p99_us / 1000:.0f} ms)"
    )
    if not measured.clean:
        measured_text += f" ({measured.problems()})"
    section.checks = [
        Check(
            "batch ingestion vs COPY of the same rows",
            measured_text,
            f"{rate(copy_rate, 'events/s')} ({events:,} rows in {copy_seconds:.1f} s)",
            value,
            "≥ 25 % of the floor",
            value is not None and value >= 0.25 and measured.clean,
        ),
        Check(
            "batch ingestion, absolute",
            rate(events_per_second, "events/s"),
            "—",
            None,
            "aim: ≥ 20,000 events/s",
            events_per_second >= 20_000 and measured.clean,
        ),
    ]
    section.notes = base_notes(stack, load_before)
    section.notes[1] = (
        f"wrk: {load.THREADS} threads, {BATCH_CONNECTIONS} connections, "
        f"{stack.settings.warmup_seconds} s warm-up, then "
        f"{stack.settings.measure_seconds} s measured; {BATCH_BODIES} bodies of "
        f"{BATCH_SIZE} events from {min(BATCH_BODIES, len(users))} users."
    )
    section.notes.append(
        "Floor: one psycopg `cursor.copy` of as many rows as the measured run "
        "stored (same users, types, values, metadata; fresh event ids) into "
        "user_actions, with its indexes and constraints, timed from the first "
        "row to the commit; taken twice right after the load, on the same table, "
        f"the faster counting ({', '.join(f'{run:.1f} s' for run in copy_runs)})."
    )
    if drain["backlog_after_load"] is not None:
        section.notes.append(drain_note(drain, stack.relay_running))
    section.raw = {
        "measured": measured.as_dict(),
        "events": events,
        "events_per_second": events_per_second,
        "copy_rows": events,
        "copy_seconds": copy_runs,
        "drain": drain,
        "web": servers.web_setup(),
    }
    return section
