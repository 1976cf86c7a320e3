"""P5 and P6: the Kafka paths against bare confluent-kafka on the same broker.

P5 fills the outbox with pending events straight in SQL, then times the
relay's real code path until the table is empty, against producing the same
payloads with a bare producer of the same configuration. P6 times
`consume_actions` reading those messages against a bare consumer reading
them. Every topic is created fresh for the run, with the broker's default
partition count, before any clock starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from tests.benchmarks.harness import (
    REPO,
    Check,
    RunSettings,
    Section,
    load_average,
    rate,
    ratio,
)

logger = logging.getLogger(__name__)

PARTITIONS = 3
BENCH_USERS = 64
CONSUME_TIMEOUT_SECONDS = 120
START_UP_NOTE = (
    "The judged row runs the command's own code in the benchmark's process, as "
    "the bare client runs in it; the row as a process adds Python and Django "
    "start-up, a fixed cost rather than a rate, and is shown for reference."
)
# What P5 published, so P6 reads the relay's own messages when both run.
_published: dict[str, Any] = {}


# --- Kafka helpers --------------------------------------------------------------


def broker() -> str:
    from django.conf import settings

    if not settings.KAFKA_BROKER:
        raise RuntimeError("KAFKA_BROKER is not set")
    return settings.KAFKA_BROKER


def create_topic(name: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker()})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    # Wait until the broker serves metadata with a leader for every partition.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        partitions = topic.partitions if topic and topic.error is None else {}
        leaders = [part.leader for part in partitions.values()]
        if len(leaders) == PARTITIONS and min(leaders) >= 0:
            return name
        time.sleep(0.2)
    raise RuntimeError(f"topic {name} has no leaders after 30 s")


def topic_size(name: str) -> int:
    """Messages in the topic: the sum of its partitions' high watermarks."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker(), "group.id": "bench-size"})
    try:
        metadata = consumer.list_topics(name, timeout=10).topics[name]
        total = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(name, partition), timeout=10
            )
            total += high - low
        return total
    finally:
        consumer.close()


def producer_config() -> tuple[dict[str, Any], str]:
    """The relay's own producer settings, and where they came from."""
    try:
        from actions.kafka import RELAY_PATH
        from actions.kafka import producer_config as relay_config
    except ImportError:
        # Until the relay exists: what the contract demands of its producer.
        config = {"bootstrap.servers": broker(), "enable.idempotence": True}
        config["acks"] = "all"
        return config, "idempotent, acks=all (no actions.kafka module yet)"
    config = relay_config(RELAY_PATH, threading.Event())
    return config, "the relay's own, from actions.kafka.producer_config"


def describe_config(config: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value}"
        for key, value in sorted(config.items())
        if key not in ("bootstrap.servers", "client.id")
        and not callable(value)
        and not isinstance(value, logging.Logger)
    )


def produce_all(topic: str, messages: list[tuple[str, bytes]]) -> float:
    """Seconds a bare producer takes to have every message acknowledged.

    Produce in a tight loop, serve reports only when the local queue is
    full, flush at the end: the fastest plain use of the client.
    """
    from confluent_kafka import KafkaException, Producer

    config, _ = producer_config()
    producer = Producer(config)
    failures: list[str] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or failures:
        raise KafkaException(
            f"bare producer left {remaining} undelivered, {len(failures)} failed"
        )
    return elapsed


def consume_all(topic: str, expected: int) -> float:
    """Seconds a bare consumer takes to receive `expected` messages.

    The clock starts at subscribe, so the group join is in the figure, as it
    is for consume_actions.
    """
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": broker(),
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received = 0
    started = time.perf_counter()
    deadline = time.monotonic() + CONSUME_TIMEOUT_SECONDS
    try:
        consumer.subscribe([topic])
        while received < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is None:
                    received += 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    if received < expected:
        raise RuntimeError(f"bare consumer got {received:,} of {expected:,} messages")
    return elapsed


# --- The outbox --------------------------------------------------------------------


def fill_outbox(count: int, topic: str) -> None:
    """`count` pending events shaped like the ones the API writes, in one INSERT.

    Columns come from the model, so a column added later with a default
    still gets a value.
    """
    from django.db import connection

    from actions.models import OutboxEvent

    expressions = {
        "event_id": "gen_random_uuid()",
        "topic": "%(topic)s",
        "key": f"(1 + n %% {BENCH_USERS})::text",
        "payload": (
            "jsonb_build_object('event_id', gen_random_uuid(), "
            f"'user_id', 1 + n %% {BENCH_USERS}, "
            "'action_type', (ARRAY['spin','bet','reward_claimed','purchase'])"
            "[1 + n %% 4], "
            "'action_timestamp', to_char(now() AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), '
            "'value', ((n %% 500) / 4.0)::numeric(18, 2)::text, "
            "'metadata', jsonb_build_object('game', 'slots', 'round', n %% 500))"
        ),
        "created_at": "now()",
        "available_at": "now()",
        "attempts": "0",
        "last_error": "''",
    }
    columns, values, params = [], [], {"topic": topic, "count": count}
    for model_field in OutboxEvent._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.name in expressions:
            values.append(expressions[model_field.name])
        else:
            params[model_field.name] = model_field.get_db_prep_save(
                model_field.get_default(), connection
            )
            values.append(f"%({model_field.name})s")
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (names from the model)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM generate_series(1, %(count)s) AS n",
            params,
        )
        cursor.execute("ANALYZE " + table)


def outbox_messages() -> list[tuple[str, bytes]]:
    """The pending events as (key, value), as the relay would send them."""
    from actions.models import OutboxEvent

    rows = OutboxEvent.objects.order_by("id").values_list("key", "payload")
    return [
        (key, json.dumps(payload, separators=(",", ":")).encode())
        for key, payload in rows.iterator(chunk_size=10_000)
    ]


def outbox_count() -> int:
    from actions.models import OutboxEvent

    return OutboxEvent.objects.count()


def relay_once_supported() -> bool:
    from django.core.management import get_commands, load_command_class

    app = get_commands().get("relay_outbox")
    if app is None:
        return False
    parser = load_command_class(app, "relay_outbox").create_parser(
        "manage.py", "relay_outbox"
    )
    return any("--once" in action.option_strings for action in parser._actions)


def drain_in_process(timeout: float) -> float:
    """Seconds the relay's sweep, called in this process, takes to empty it.

    `actions.relay.sweep` is what `relay_outbox` and the Celery task run; it
    returns when nothing is due, so one call normally drains everything.
    """
    from actions.relay import sweep

    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while outbox_count() and time.monotonic() < deadline:
        sweep()
    return time.perf_counter() - started


def drain_by_process(timeout: float, once: bool) -> float:
    """Seconds from starting `manage.py relay_outbox` to an empty outbox.

    With `--once` the command exits when it is done; otherwise it keeps
    running and is stopped once the table is empty. Python and Django
    start-up are inside this figure.
    """
    command = [sys.executable, "manage.py", "relay_outbox"]
    if once:
        command.append("--once")
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if once and process.poll() is not None:
                break
            if not once and outbox_count() == 0:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        if process.poll() is None:
            process.terminate()
        _, errors = process.communicate(timeout=30)
    if once and process.returncode != 0:
        raise RuntimeError(f"relay_outbox --once failed: {errors[-2000:]}")
    return elapsed


def run_p5(settings: RunSettings) -> Section:
    from django.core.management import get_commands

    section = Section("p5", f"outbox relay draining {settings.kafka_events:,} events")
    try:
        from actions.relay import sweep  # noqa: F401 (only: is it there?)
    except ImportError:
        return section.missing("there is no relay (actions.relay.sweep) yet")

    count = settings.kafka_events
    load_before = load_average()
    has_command = "relay_outbox" in get_commands()
    once = has_command and relay_once_supported()
    config, config_source = producer_config()
    run_id = uuid.uuid4().hex[:8]
    floor_topic = create_topic(f"bench_p5_floor_{run_id}")
    relay_topic = create_topic(f"bench_p5_relay_{run_id}")

    fill_outbox(count, relay_topic)
    messages = outbox_messages()
    # Warm the broker and this process up, so neither side pays for it.
    produce_all(create_topic(f"bench_p5_warmup_{run_id}"), messages[: count // 10])
    floor_runs = [produce_all(floor_topic, messages)]

    timeout = max(120.0, floor_runs[0] * 40)
    results: dict[str, dict[str, float]] = {}
    drained = drain_in_process(timeout)
    results["in-process"] = {"seconds": drained, "left": outbox_count()}
    if has_command:
        fill_outbox(count, relay_topic)
        drained = drain_by_process(timeout, once)
        results["process"] = {"seconds": drained, "left": outbox_count()}
    # The floor again after the relay; the faster of the two counts.
    floor_runs.append(produce_all(floor_topic, messages))
    floor_seconds = min(floor_runs)
    floor_rate = count / floor_seconds
    published = topic_size(relay_topic)
    _published.update({"topic": relay_topic, "count": published})

    floor_text = f"{rate(floor_rate, 'events/s')} ({count:,} in {floor_seconds:.2f} s)"
    target = "≥ 30 % of the floor"
    for way, figures in results.items():
        relay_rate = count / figures["seconds"]
        value = ratio(relay_rate, floor_rate)
        what = (
            "the relay's sweep (`actions.relay.sweep`) in-process vs bare produce"
            if way == "in-process"
            else "`manage.py relay_outbox"
            + (" --once`" if once else "` (stopped when empty)")
            + " as a process, start-up included, vs bare produce"
        )
        measured = (
            f"{rate(relay_rate, 'events/s')} ({count:,} in {figures['seconds']:.2f} s)"
        )
        if figures["left"]:
            measured += f", {figures['left']:,} left in the outbox"
        section.checks.append(
            Check(
                what,
                measured,
                floor_text,
                value,
                target if way == "in-process" else "—",
                value is not None and value >= 0.30 and not figures["left"],
                reference=way != "in-process",
            )
        )
    expected_messages = count * len(results)
    section.notes = [
        f"Producer configuration of both: {config_source}: "
        + describe_config(config)
        + ".",
        f"Outbox filled with {count:,} pending events by one INSERT … SELECT before "
        "each timed drain; the floor produces the same keys and payloads to its "
        "own topic in a tight loop, then flushes (every message acknowledged). "
        "It runs before and after the relay, after a warm-up; the faster run "
        f"counts ({', '.join(f'{run:.2f} s' for run in floor_runs)}).",
        f"Messages in the relay's topic afterwards: {published:,} "
        f"(expected {expected_messages:,}; more means redeliveries).",
        f"Topics created fresh with {PARTITIONS} partitions; Kafka, PostgreSQL and "
        "the relay share the machine's 2 cores.",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_average()}.",
    ]
    if has_command:
        section.notes.append(START_UP_NOTE)
    else:
        section.notes.insert(
            0,
            "`manage.py relay_outbox` does not exist yet: only the in-process "
            "sweep was timed.",
        )
    section.raw = {
        "events": count,
        "floor_seconds": floor_runs,
        "relay": results,
        "published": published,
        "producer_config": describe_config(config),
        "once_supported": once,
    }
    return section


# --- P6: consume_actions -----------------------------------------------------------


def consume_in_process(topic: str, expected: int) -> float:
    from django.core.management import call_command

    started = time.perf_counter()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        call_command(
            "consume_actions",
            topic=topic,
            from_beginning=True,
            max_messages=expected,
            timeout=CONSUME_TIMEOUT_SECONDS,
            stdout=sink,
        )
    return time.perf_counter() - started


def consume_by_process(topic: str, expected: int) -> float:
    command = [
        sys.executable,
        "manage.py",
        "consume_actions",
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(expected),
        "--timeout",
        str(CONSUME_TIMEOUT_SECONDS),
    ]
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=CONSUME_TIMEOUT_SECONDS + 60,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"consume_actions failed: {completed.stderr[-2000:]}")
    return elapsed


def run_p6(settings: RunSettings) -> Section:
    from django.core.management import get_commands

    section = Section(
        "p6", f"consume_actions reading {settings.kafka_events:,} messages"
    )
    if "consume_actions" not in get_commands():
        return section.missing("there is no `manage.py consume_actions` command yet")

    count = settings.kafka_events
    load_before = load_average()
    if _published.get("count", 0) >= count:
        topic, source = _published["topic"], "the messages the relay published in P5"
    else:
        topic = create_topic(f"bench_p6_{uuid.uuid4().hex[:8]}")
        produce_all(topic, synthetic_messages(count))
        source = "messages shaped like the relay's, produced by a bare producer"

    available = topic_size(topic)
    # A first read warms the broker's page cache and this process. Reads of
    # 100,000 messages last half a second, so each side gets two, taken
    # turn about, and its faster one counts.
    floor_runs = [consume_all(topic, count), consume_all(topic, count)]
    command_runs = [consume_in_process(topic, count)]
    floor_runs.append(consume_all(topic, count))
    command_runs.append(consume_in_process(topic, count))
    timings = {
        "in-process": min(command_runs),
        "process": consume_by_process(topic, count),
    }
    floor_seconds = min(floor_runs[1:])
    floor_rate = count / floor_seconds

    floor_text = f"{rate(floor_rate, 'msg/s')} ({count:,} in {floor_seconds:.2f} s)"
    for way, seconds in timings.items():
        command_rate = count / seconds
        value = ratio(command_rate, floor_rate)
        what = (
            "`consume_actions` called in-process vs bare consume"
            if way == "in-process"
            else "`manage.py consume_actions` as a process, start-up included, "
            "vs bare consume"
        )
        section.checks.append(
            Check(
                what,
                f"{rate(command_rate, 'msg/s')} ({count:,} in {seconds:.2f} s)",
                floor_text,
                value,
                "≥ 50 % of the floor" if way == "in-process" else "—",
                value is not None and value >= 0.50,
                reference=way != "in-process",
            )
        )
    section.notes = [
        f"Topic: {source}, {available:,} messages over {PARTITIONS} partitions; "
        f"every reader stops at the {count:,}th.",
        "Each reader joins a new consumer group from the beginning, without "
        "committing offsets (the command's default with no --group-id); the clock "
        "starts before the group join and stops at the last message. The bare "
        "consumer takes batches of 1,000 and decodes nothing; `consume_actions` "
        "prints every message as a JSON line, here to /dev/null. The bare "
        "consumer reads once to warm up, then each side reads twice, turn about, "
        "and its faster read counts (bare: "
        f"{', '.join(f'{run:.2f} s' for run in floor_runs[1:])}; in-process "
        f"`consume_actions`: {', '.join(f'{run:.2f} s' for run in command_runs)}).",
        START_UP_NOTE,
        f"Load average (1/5/15 min) before: {load_before}; after: {load_average()}.",
    ]
    section.raw = {
        "messages": count,
        "topic_source": source,
        "floor_seconds": floor_runs,
        "command_seconds": timings,
        "in_process_runs": command_runs,
    }
    return section


def synthetic_messages(count: int) -> list[tuple[str, bytes]]:
    messages = []
    for number in range(count):
        user_id = 1 + number % BENCH_USERS
        payload = {
            "event_id": str(uuid.uuid4()),
            "user_id": user_id,
            "action_type": "spin",
            "action_timestamp": "2025-01-01T00:00:00.000000Z",
            "value": f"{(number % 500) / 4:.2f}",
            "metadata": {"game": "slots", "round": number % 500},
        }
        messages.append((str(user_id), json.dumps(payload).encode()))
    return messages
