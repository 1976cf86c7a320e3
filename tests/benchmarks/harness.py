"""What every benchmark shares: the run's settings, the machine, the report.

A benchmark returns a `Section`: checks (measured figure, floor, ratio,
target, verdict) and notes. `publish` writes its raw JSON under
`bench-results/` and rewrites only that benchmark's block of
docs/benchmarks.md, between `<!-- bench:ID -->` and `<!-- /bench:ID -->`,
so sections written by other benchmarks (P1) stay as they are.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCS_PATH = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = REPO / "bench-results"

HEADING = "# Benchmarks"
INTRO = """\
<!-- bench:intro -->
The targets of the performance table (P1 to P6) are measured by programs in
`tests/benchmarks/`, not by timed unit tests. Run them with:

```sh
make bench                      # P2 to P6, about 7 to 10 minutes on 2 cores
scripts/bench.sh p2 p4          # only some of them
scripts/bench.sh --quick p5     # shorter runs and fewer events, for a smoke check
scripts/bench.sh p1             # the RFM batch, P1 and P1b, about 30 minutes
```

`scripts/bench.sh` starts PostgreSQL, Redis and Kafka on free loopback ports
in a throw-away folder (as `make test` does), migrates, runs the chosen
benchmarks and rewrites their sections below. When `DATABASE_URL`,
`REDIS_URL` and `KAFKA_BROKER` are set, those servers are used instead; the
benchmarks write, and delete, many rows and messages there, so point them
only at servers that may be thrown away. Raw figures of every run are kept
as JSON in `bench-results/` (not committed).

**Floors.** The machines are small (2 cores) and shared, so an absolute
figure says little on its own. Every target is a ratio against a floor
measured on the same machine in the same run, right next to the measured
figure: `GET /health` on the same gunicorn server for the HTTP paths (the
cost of the web stack itself), PostgreSQL `COPY` of the same rows for batch
ingestion, and bare confluent-kafka producing or consuming the same messages
for the Kafka paths. Absolute figures stand beside the ratios for reference.

**The peer.** `../shared/peers/fastapi_seed/` is the backend a team would
have built instead (FastAPI under uvicorn with 2 workers, SQLAlchemy, Redis,
fire-and-forget Kafka, no authentication, no outbox). The HTTP benchmarks run
it on the same PostgreSQL and Redis with the same load, in its own virtual
environment built from its requirements file; `PEER_DIR` points elsewhere.

**How ccweb runs.** Every ccweb figure of a run comes from one gunicorn
server started as production starts it (`docker/gunicorn.conf.py`, DEBUG
off, JWT on each API request, PostgreSQL, Redis and Kafka on the same
machine, `PROMETHEUS_MULTIPROC_DIR` set), with its defaults for 2 cores:
2 threaded workers of 8 threads each (`ccweb.serving.SpreadingThreadWorker`,
gthread that leaves new connections to a worker with a free thread). That
setup was chosen because it serves the API best, not by the ratios it
gives. Threaded workers answered about 1.9 times as many
`POST /api/actions` and 3 to 5 times as many recommendations as 4 sync
workers (which close the connection after every answer), and their
`GET /health` is faster too, which makes the floor ratios harder, not
easier. With connections spread, 2 workers of 8 served as much as 4 of 4
on every path with a lower p99 (docs/decisions.md).
`BENCH_WEB_CONCURRENCY` and `BENCH_WEB_THREADS` change it for an
experiment. The outbox relay runs beside it as deployed
(`manage.py relay_outbox`).

**Verdicts.** A check passes when its ratio reaches the target and every
answer of the run had the expected status with no socket error or timeout.
Against the peer, ccweb must also have an equal or lower p99. Where a floor
is measured twice (before and after the path), the faster run counts, so
drift on a shared machine cannot flatter a ratio.

**Load.** HTTP load comes from `wrk` (2 threads, 32 connections unless a
section says otherwise, a warm-up, then a fixed duration) in its own process
on loopback, sharing the 2 cores with the servers, as a client on the same
machine would. Latency percentiles are wrk's, per request. The Kafka broker
starts with the run, so before its first measurement P2 serves actions for
30 s unmeasured: a broker that has just started spends about twice the CPU
per action for its first half minute of load.

Each section says when and where it was measured and with which command.
Figures taken while other work ran on the machine are noisier; the load
average before and after each run is recorded next to the figures.
<!-- /bench:intro -->
"""


@dataclass
class RunSettings:
    """How long and how big: the full run, or the --quick smoke run."""

    quick: bool
    warmup_seconds: int
    measure_seconds: int
    kafka_events: int
    command: str
    work_dir: Path
    # Unmeasured load on the whole stack before its first measurement.
    stack_warmup_seconds: int = 0

    @classmethod
    def create(cls, quick: bool, command: str, work_dir: Path) -> RunSettings:
        if quick:
            return cls(quick, 2, 5, 20_000, command, work_dir, 3)
        return cls(quick, 5, 20, 100_000, command, work_dir, 30)


@dataclass
class Check:
    """One line of a section's table."""

    what: str
    measured: str
    floor: str
    ratio: float | None
    target: str
    passed: bool | None
    ratio_format: str = "percent"
    # A figure shown for context, judged by no target.
    reference: bool = False

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "—"
        if self.ratio_format == "times":
            return f"{self.ratio:.2f} x"
        return f"{self.ratio * 100:.1f} %"

    def verdict(self) -> str:
        if self.reference:
            return "for reference"
        if self.passed is None:
            return "not measured"
        return "pass" if self.passed else "**fail**"


@dataclass
class Section:
    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    measured_at: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def missing(self, reason: str) -> Section:
        self.notes.insert(0, f"Not measured: {reason}.")
        return self


# --- The machine -----------------------------------------------------------------


def _meminfo_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _git_revision() -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "memory": _meminfo_total(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "revision": _git_revision(),
    }


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- Formatting -----------------------------------------------------------------


def rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def millis(microseconds: float) -> str:
    return f"{microseconds / 1000:.1f} ms"


def ratio(measured: float, floor: float) -> float | None:
    return measured / floor if floor > 0 else None


# --- The report -----------------------------------------------------------------


def render(section: Section) -> str:
    machine = section.machine
    lines = [
        f"<!-- bench:{section.key} -->",
        f"## {section.key.upper()} — {section.title}",
        "",
        f"Measured {section.measured_at} on {machine.get('cores')} cores, "
        f"{machine.get('memory')} memory, {machine.get('cpu')} "
        f"(Linux {machine.get('kernel')}, Python {machine.get('python')}, "
        f"revision {machine.get('revision')}), with:",
        "",
        "```sh",
        section.command,
        "```",
        "",
        "| check | measured | floor or peer | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for check in section.checks:
        lines.append(
            f"| {check.what} | {check.measured} | {check.floor} | "
            f"{check.ratio_text()} | {check.target} | {check.verdict()} |"
        )
    if not section.checks:
        lines.append("| — | — | — | — | — | not measured |")
    lines.append("")
    lines.extend(f"- {note}" for note in section.notes)
    if section.notes:
        lines.append("")
    lines.append(f"<!-- /bench:{section.key} -->")
    return "\n".join(lines)


def replace_block(document: str, key: str, block: str) -> str:
    """Put `block` where the markers of `key` are, or at the end of the file."""
    pattern = re.compile(
        rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->",
        re.DOTALL,
    )
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    return document.rstrip("\n") + "\n\n" + block + "\n"


def with_intro(document: str) -> str:
    """The intro, refreshed in place or added under the first heading."""
    if "<!-- bench:intro -->" in document:
        return replace_block(document, "intro", INTRO.rstrip("\n"))
    if not document.strip():
        return f"{HEADING}\n\n{INTRO}"
    if document.startswith("# "):
        heading, _, rest = document.partition("\n")
        return f"{heading}\n\n{INTRO}\n{rest.lstrip(chr(10))}"
    return f"{HEADING}\n\n{INTRO}\n{document}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".bench-")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def publish(section: Section) -> Path:
    """Write the raw JSON and this section of docs/benchmarks.md."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    raw_path = RESULTS_DIR / f"{stamp}-{section.key}.json"
    raw_path.write_text(json.dumps(asdict(section), indent=2, default=str) + "\n")

    # Read just before writing: other benchmarks (P1) edit the same file.
    document = DOCS_PATH.read_text() if DOCS_PATH.exists() else ""
    document = with_intro(document)
    _write_atomically(DOCS_PATH, replace_block(document, section.key, render(section)))
    return raw_path
