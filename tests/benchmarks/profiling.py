"""Where the time goes: `python -m tests.benchmarks.profiling p2|p3|p4|p5|p6`.

Runs the benchmark's request in this process through Django's test client
(no network, no gunicorn), counts SQL statements per request, and prints
cProfile's top functions by cumulative time, ccweb's own code first. For
P5 and P6 it profiles one relay sweep, or one `consume_actions` run, over
freshly made events instead.
Needs the environment `scripts/bench.sh` sets up; with servers already
running:

    set -a; source .services/env; set +a
    DEBUG=false SECRET_KEY=x JWT_SECRET=y ALLOWED_HOSTS=127.0.0.1 \\
      SECURE_SSL_REDIRECT=false .venv/bin/python -m tests.benchmarks.profiling p2
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable

PROJECT_PARTS = ("/ccweb/", "/actions/", "/segments/", "/visits/")


def build_calls(name: str) -> tuple[str, list[Callable[[], int]]]:
    from django.test import Client

    from tests.benchmarks import seed, web

    users = seed.ensure_users(web.USERS)
    rng = random.Random(1)
    clients = {
        user.id: Client(
            HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {user.token}"
        )
        for user in users
    }

    def post(user: seed.BenchUser, path: str, body: object) -> Callable[[], int]:
        text = json.dumps(body)
        client = clients[user.id]
        return lambda: (
            client.post(path, text, content_type="application/json").status_code
        )

    def get(user: seed.BenchUser, path: str) -> Callable[[], int]:
        client = clients[user.id]
        return lambda: client.get(path).status_code

    if name == "p2":
        calls = [
            post(user, "/api/actions", seed.action_body(user, rng))
            for user in users
            for _ in range(4)
        ]
        return "POST /api/actions", calls
    if name == "p3":
        calls = [
            post(user, "/api/actions/batch", {"actions": web.batch_events(user, rng)})
            for user in users[:8]
        ]
        return "POST /api/actions/batch (500 events)", calls
    if name == "p4":
        seed.set_streaks(users)
        calls = [get(user, web.recommendation_path(user)) for user in users]
        return "GET recommendation", calls
    if name == "health":
        anonymous = Client(HTTP_HOST="127.0.0.1")
        return "GET /health", [lambda: anonymous.get("/health").status_code]
    raise SystemExit(f"unknown request kind {name}")


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def print_profile(profile: cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats("|".join(part.strip("/") + "/" for part in PROJECT_PARTS), 25)
    stats.sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def profile_kafka_path(kind: str, events: int, top: int) -> None:
    """P5: one relay sweep over `events` pending rows; P6: consume_actions."""
    import uuid

    from django.core.management import call_command

    from tests.benchmarks import kafka_paths

    topic = kafka_paths.create_topic(f"bench_profile_{uuid.uuid4().hex[:8]}")
    kafka_paths.fill_outbox(events, topic)
    profile = cProfile.Profile()
    if kind == "p5":
        from actions.relay import sweep

        started = time.perf_counter()
        profile.enable()
        sweep()
        profile.disable()
        label = "relay sweep"
    else:
        kafka_paths.produce_all(topic, kafka_paths.outbox_messages())
        started = time.perf_counter()
        with open(os.devnull, "w") as sink:
            profile.enable()
            call_command(
                "consume_actions",
                topic=topic,
                from_beginning=True,
                max_messages=events,
                stdout=sink,
            )
            profile.disable()
        label = "consume_actions"
    elapsed = time.perf_counter() - started
    print(f"{label}: {events:,} events in {elapsed:.2f} s under cProfile")
    print_profile(profile, top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profiling")
    parser.add_argument("kind", choices=["p2", "p3", "p4", "p5", "p6", "health"])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--events", type=int, default=50_000, help="P5 and P6")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp())
    import django

    django.setup()
    from django.db import connection

    if args.kind in ("p5", "p6"):
        profile_kafka_path(args.kind, args.events, args.top)
        return 0
    label, calls = build_calls(args.kind)

    def run(count: int) -> None:
        for number in range(count):
            status = calls[number % len(calls)]()
            if status >= 300:
                raise SystemExit(f"{label} answered {status}")

    run(min(50, args.requests))
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        run(args.requests)
    elapsed = time.perf_counter() - started
    print(
        f"{label}: {args.requests / elapsed:,.0f} requests/s in one process, "
        f"{elapsed / args.requests * 1000:.2f} ms each, "
        f"{counter.count / args.requests:.1f} SQL statements each"
    )

    profile = cProfile.Profile()
    profile.enable()
    run(args.requests)
    profile.disable()
    print_profile(profile, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
