"""What every drill shares: the size, the processes, the load, the report.

Drills are black-box: they start ccweb as production runs it (gunicorn with
`docker/gunicorn.conf.py`, DEBUG off, real secrets, the outbox relay as its
own process) against the servers `scripts/test.sh` started, talk to it over
HTTP on loopback, and look at PostgreSQL and Kafka directly. They use the
database named in DATABASE_URL, not pytest-django's test database, so every
drill makes its own users and publishes to its own topic.

Size comes from DRILL_SCALE: `small` (the default, used by `make test`) is
big enough to prove each property; `full` (`make drills`) has the sizes of
the targets (10,000 actions, a 20 s broker outage, 2,000 fuzzed requests).
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.processes import Process, free_port, gunicorn_command

REPO = Path(__file__).resolve().parents[2]
DOCS_PATH = REPO / "docs" / "drills.md"
READY_TIMEOUT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 30
# Seeded by `migrate` (unlimited, active): every drill user signs up with it.
INVITE_CODE = "5882"
PASSWORD = "drill-Horse-battery-9"


# --- Size ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    name: str
    broker_outage_actions: int
    broker_outage_seconds: int
    kill_actions: int
    fuzz_examples_per_operation: int
    fuzz_min_requests: int
    load_threads: int = 4


SCALES = {
    "small": Scale(
        name="small",
        broker_outage_actions=500,
        broker_outage_seconds=5,
        kill_actions=400,
        fuzz_examples_per_operation=6,
        fuzz_min_requests=300,
    ),
    "full": Scale(
        name="full",
        broker_outage_actions=10_000,
        broker_outage_seconds=20,
        kill_actions=3_000,
        fuzz_examples_per_operation=150,
        fuzz_min_requests=2_000,
    ),
}


def current_scale() -> Scale:
    name = os.environ.get("DRILL_SCALE", "small")
    if name not in SCALES:
        raise ValueError(f"DRILL_SCALE must be one of {', '.join(SCALES)}, not {name}")
    return SCALES[name]


# --- Environment of the processes under test ----------------------------------

# One pair of production-like secrets per test session: the web processes
# sign tokens with it, and drills forge tokens with it (R7).
SECRET_KEY = secrets.token_urlsafe(50)
JWT_SECRET = secrets.token_urlsafe(50)
# Test-only switches of the pytest process that production never sets.
_NOT_INHERITED = ("CCWEB_TESTING", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production process, on the drill's servers.

    Each call gets its own Kafka topic and cache key prefix, so drills never
    see each other's messages or throttle counters. Throttles are lifted
    (the drills sign many users up from one address) unless a drill sets
    THROTTLE_*_RATE itself, as R7 does.
    """
    env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "JWT_SECRET": JWT_SECRET,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Behind a TLS-terminating proxy in production; plain HTTP here.
            "SECURE_SSL_REDIRECT": "false",
            "KAFKA_TOPIC_USER_ACTIONS": unique_name("drill_actions"),
            "CACHE_KEY_PREFIX": unique_name("drill"),
            "THROTTLE_AUTH_RATE": "100000/min",
            "THROTTLE_INVITE_RATE": "100000/min",
            "JWT_ACCESS_MINUTES": "120",
            # Errors only: the logs are read when a drill fails, and every 4xx
            # a fuzzer provokes would bury them.
            "LOG_LEVEL": "ERROR",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run `manage.py ARGS` as an operator would; its output, or fail loudly."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout + result.stderr


# --- Processes ------------------------------------------------------------------


class Web(Process):
    """ccweb under gunicorn, as `docker/entrypoint.sh web` serves it."""

    def __init__(self, env: dict[str, str], work_dir: Path):
        self.port = free_port()
        metrics_dir = work_dir / f"prometheus-{self.port}"
        metrics_dir.mkdir()
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        command = [
            *gunicorn_command(self.port),
            # Every gunicorn of the machine would share ~/.gunicorn/gunicorn.ctl.
            "--no-control-socket",
        ]
        super().__init__("gunicorn", command, env, work_dir / f"web-{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> Web:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /health:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one of this server's workers; gunicorn forks a new one."""
        if pid not in self.worker_pids():
            raise ValueError(f"{pid} is not a worker of gunicorn {self.pid}")
        os.kill(pid, signal.SIGKILL)


def relay_process(env: dict[str, str], work_dir: Path) -> Process:
    """The outbox relay as deployed: `manage.py relay_outbox`, its own process."""
    log = work_dir / f"relay-{uuid.uuid4().hex[:6]}.log"
    command = [sys.executable, "manage.py", "relay_outbox"]
    return Process("relay", command, env, log)


# --- HTTP -----------------------------------------------------------------------


@dataclass
class Account:
    """A user signed up over HTTP, with the token pair the signup returned."""

    base_url: str
    username: str
    user_id: int
    access: str
    refresh: str
    password: str = PASSWORD

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.access}"
        return session


def sign_up(base_url: str, prefix: str = "drill") -> Account:
    """A new user, signed up with the seeded invite code, and its tokens."""
    username = unique_name(prefix)
    response = requests.post(
        f"{base_url}/api/auth/signup",
        json={"username": username, "password": PASSWORD, "invite_code": INVITE_CODE},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if response.status_code != 201:
        raise RuntimeError(f"signup answered {response.status_code}: {response.text}")
    body = response.json()
    return Account(
        base_url=base_url,
        username=username,
        user_id=body["user_id"],
        access=body["access"],
        refresh=body["refresh"],
    )


def action_body(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "action_type": "game_spin",
        "value": "1.50",
        "metadata": {"drill": True},
        "event_id": event_id,
        **extra,
    }


@dataclass
class LoadResult:
    """What a load run saw: statuses, transport errors, latencies, event ids."""

    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    retried: int = 0
    seconds: float = 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": sum(self.statuses.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "transport_errors": dict(self.errors),
            "retried": self.retried,
            "seconds": round(self.seconds, 2),
            "p50_ms": round(self.percentile(0.50) * 1000, 1),
            "p99_ms": round(self.percentile(0.99) * 1000, 1),
            "max_ms": round(max(self.latencies, default=0) * 1000, 1),
        }


class ActionLoad:
    """POST /api/actions from a few threads, one account per thread.

    Each action carries a fresh `event_id` chosen here, so the drill knows
    exactly which events must reach Kafka. A request cut off by a dead
    connection (a killed worker) or a timeout is sent again with the same
    `event_id`, as a real client would; the API's idempotency makes that
    safe. Requests that never got an answer are counted in `errors`.
    `rate_per_second` spreads the load over time, so a fault injected
    mid-run falls among requests instead of after them.
    """

    def __init__(
        self,
        accounts: list[Account],
        total: int,
        rate_per_second: float | None = None,
        retries: int = 3,
    ):
        self.accounts = accounts
        self.total = total
        self.interval = 1.0 / rate_per_second if rate_per_second else 0.0
        self.retries = retries
        self.result = LoadResult()
        self.done = 0
        self.in_window: Callable[[], bool] = lambda: False
        self.answered_in_window = 0
        self._lock = threading.Lock()
        self._issued = 0
        self._next_slot = 0.0
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def start(self) -> ActionLoad:
        self._started = time.monotonic()
        self._next_slot = self._started
        for account in self.accounts:
            thread = threading.Thread(target=self._run, args=(account,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float = 900) -> LoadResult:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def wait_for(self, done: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.done < done and time.monotonic() < deadline:
            time.sleep(0.05)

    def _claim(self) -> bool:
        with self._lock:
            if self._issued >= self.total:
                return False
            self._issued += 1
            slot = self._next_slot
            self._next_slot = max(slot, time.monotonic()) + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return True

    def _run(self, account: Account) -> None:
        session = account.session()
        url = f"{account.base_url}/api/actions"
        while self._claim():
            event_id = str(uuid.uuid4())
            status, error, elapsed, retried = self._post(session, url, event_id)
            with self._lock:
                self.result.sent.add(event_id)
                self.result.retried += retried
                if error:
                    self.result.errors[error] += 1
                else:
                    self.result.statuses[status] += 1
                    self.result.latencies.append(elapsed)
                    if status in (200, 201):
                        self.result.acknowledged.add(event_id)
                    if self.in_window():
                        self.answered_in_window += 1
                self.done += 1

    def _post(
        self, session: requests.Session, url: str, event_id: str
    ) -> tuple[int, str | None, float, int]:
        error = None
        for attempt in range(self.retries + 1):
            started = time.monotonic()
            try:
                response = session.post(
                    url, json=action_body(event_id), timeout=HTTP_TIMEOUT_SECONDS
                )
            except requests.RequestException as exc:
                # A dropped connection or a timeout: counted, and sent again.
                error = type(exc).__name__
                session.close()
                time.sleep(0.2)
                continue
            return response.status_code, None, time.monotonic() - started, attempt
        return 0, error, 0.0, self.retries


def metric_total(base_url: str, name: str) -> float:
    """The sum of every series of one metric on /metrics (0 when absent)."""
    page = requests.get(f"{base_url}/metrics", timeout=HTTP_TIMEOUT_SECONDS).text
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$"
    return sum(float(value) for value in re.findall(pattern, page, re.MULTILINE))


# --- PostgreSQL and Kafka, looked at directly ---------------------------------


def query(sql: str, params: Iterable[Any] = ()) -> list[tuple]:
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
        return conn.execute(sql, tuple(params)).fetchall()


def stored_event_ids(user_ids: Iterable[int]) -> set[str]:
    rows = query(
        "SELECT event_id::text FROM user_actions WHERE user_id = ANY(%s)",
        [list(user_ids)],
    )
    return {event_id for (event_id,) in rows}


@dataclass(frozen=True)
class Message:
    event_id: str
    partition: int
    offset: int


def read_messages(topic: str, timeout: float = 60) -> list[Message]:
    """Every message on `topic`, from its beginning to its current end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BROKER"],
            "group.id": unique_name("drill_reader"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        ends = {}
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            if high > low:
                ends[partition] = high
        consumer.assign(
            [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in ends]
        )
        messages = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error():
                    continue
                event_id = json.loads(message.value())["event_id"]
                messages.append(
                    Message(event_id, message.partition(), message.offset())
                )
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
        if ends:
            raise RuntimeError(f"could not read {topic} to its end in {timeout}s")
        return messages
    finally:
        consumer.close()


def read_topic(topic: str, timeout: float = 60) -> list[str]:
    """Every event id on `topic`, in partition order, duplicates included."""
    return [message.event_id for message in read_messages(topic, timeout)]


def wait_for_topic(
    topic: str, expected: set[str], timeout: float, settle_seconds: float = 3.0
) -> tuple[list[str], float]:
    """Read `topic` until it holds every id of `expected` (or time runs out).

    Returns every id on the topic once it has settled (so late duplicates are
    counted too) and how long the wait took.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        seen = read_topic(topic)
        if expected <= set(seen) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    waited = time.monotonic() - started
    time.sleep(settle_seconds)
    return read_topic(topic), waited


def delivery_figures(expected: set[str], on_topic: list[str]) -> dict[str, int]:
    counts = Counter(on_topic)
    return {
        "expected_events": len(expected),
        "messages_on_topic": len(on_topic),
        "unique_on_topic": len(counts),
        "missing_from_topic": len(expected - set(counts)),
        "duplicates": sum(count - 1 for count in counts.values()),
    }


def explain_delivery(topic: str, expected: set[str]) -> dict[str, Any]:
    """Where the missing events are, and where the duplicates sit, if any.

    A missing event still in the outbox is late (see its attempts and last
    error); one that is in neither place was lost.
    """
    messages = read_messages(topic)
    missing = sorted(expected - {message.event_id for message in messages})
    counts = Counter(message.event_id for message in messages)
    duplicates = {
        event_id: [
            f"{message.partition}:{message.offset}"
            for message in messages
            if message.event_id == event_id
        ]
        for event_id, count in counts.items()
        if count > 1
    }
    outbox = {
        str(event_id): {
            "attempts": attempts,
            "available_at": str(available_at),
            "last_error": last_error[:200],
        }
        for event_id, attempts, available_at, last_error in query(
            "SELECT event_id, attempts, available_at, last_error FROM actions_outbox "
            "WHERE event_id = ANY(%s::uuid[])",
            [missing],
        )
    }
    return {
        "missing": missing[:10],
        "missing_still_in_outbox": outbox,
        "missing_lost": [event_id for event_id in missing if event_id not in outbox],
        "duplicates_at_partition_offset": dict(list(duplicates.items())[:10]),
    }


def explain_if_missing(
    topic: str, expected: set[str], delivery: dict[str, int]
) -> dict[str, Any]:
    """`explain_delivery` when something is missing, for the report."""
    if not delivery["missing_from_topic"]:
        return {}
    return {"diagnosis": explain_delivery(topic, expected)}


# --- Report ---------------------------------------------------------------------

RESULTS_START = "<!-- drills:results:start -->"
RESULTS_END = "<!-- drills:results:end -->"
RESULTS_HEADER = (
    "| drill | verdict | figures | scale | command | date (UTC) | machine |\n"
    "|---|---|---|---|---|---|---|"
)
# Every summary printed in this session, for the terminal summary.
SUMMARIES: list[dict[str, Any]] = []


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, {platform.machine()}, load {load:.1f}"


def should_record() -> bool:
    """Rewrite docs/drills.md only on full runs (or when asked to)."""
    return os.environ.get("DRILL_RECORD", "") == "1" or current_scale().name == "full"


def report(drill: str, verdict: bool | str, **figures: Any) -> dict[str, Any]:
    """Print one JSON line with the figures and, on full runs, record them.

    `verdict` is True (pass), False (FAIL) or a word of its own ("not
    audited") for a result that is neither.
    """
    if isinstance(verdict, bool):
        verdict = "pass" if verdict else "FAIL"
    summary = {
        "drill": drill,
        "verdict": verdict,
        "scale": current_scale().name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        **figures,
    }
    line = json.dumps(summary, default=str, sort_keys=False)
    print(f"DRILL {line}", flush=True)
    SUMMARIES.append(summary)
    if should_record():
        record(summary)
    return summary


def _figures_text(summary: dict[str, Any]) -> str:
    skip = {"drill", "verdict", "scale", "date", "machine"}
    parts = []
    for key, value in summary.items():
        if key in skip:
            continue
        text = (
            json.dumps(value, default=str) if isinstance(value, dict | list) else value
        )
        parts.append(f"{key}={text}")
    return "; ".join(parts).replace("|", "/")


def record(summary: dict[str, Any]) -> None:
    """Replace this drill's row of the results table in docs/drills.md."""
    text = DOCS_PATH.read_text() if DOCS_PATH.exists() else ""
    if RESULTS_START not in text or RESULTS_END not in text:
        text = text.rstrip() + f"\n\n{RESULTS_START}\n{RESULTS_END}\n"
    head, rest = text.split(RESULTS_START, 1)
    body, tail = rest.split(RESULTS_END, 1)

    rows = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("drill", "---"):
            rows[cells[0]] = line
    command = os.environ.get("DRILL_COMMAND", "scripts/test.sh -m drill tests/drills")
    rows[summary["drill"]] = (
        f"| {summary['drill']} | {summary['verdict']} | {_figures_text(summary)} "
        f"| {summary['scale']} | `{command}` | {summary['date']} "
        f"| {summary['machine']} |"
    )
    table = "\n".join(rows[key] for key in sorted(rows))
    body = (
        "\nThe last run of each drill; each run rewrites its own rows.\n\n"
        f"{RESULTS_HEADER}\n{table}\n"
    )
    DOCS_PATH.write_text(f"{head}{RESULTS_START}{body}{RESULTS_END}{tail}")
