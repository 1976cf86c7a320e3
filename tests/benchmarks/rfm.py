"""P1 / P1b: the RFM batch against its floor and against pandas.

    .venv/bin/python -m tests.benchmarks.rfm            # P1 and P1b, ~15 min
    .venv/bin/python -m tests.benchmarks.rfm --quick    # small sizes, a smoke run
    .venv/bin/python -m tests.benchmarks.rfm measure --users 200000 \\
        --actions 5000000 --pandas                      # one size, JSON out

Each size runs in a child process of its own, so that its peak memory
(`ru_maxrss`) is its own. A child fills the database at DATABASE_URL with
synthetic users and actions (server-side `INSERT ... SELECT
generate_series`, secondary indexes built after the load, then VACUUM
ANALYZE), and then measures, alternating, several times:

- the floor: the bare aggregation (max / count / sum per user over the
  window), the query the batch cannot do without;
- the batch: `compute_rfm_and_update_segments`, as the nightly task runs it;
- once each, pandas doing the same job (read the window, group, score,
  apply the rules, write every row back), the usual way (read_sql,
  executemany) and at its best (COPY both ways), in rfm_pandas.py.

`--republish FILE` rewrites the docs section from a raw JSON file without
measuring again.

Without DATABASE_URL a PostgreSQL is started by scripts/services.py in a
throw-away folder. The database's rows are deleted: point DATABASE_URL only
at a database that may be wiped. Results go to the `p1` section of
docs/benchmarks.md and as JSON to bench-results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SIZES = {
    # name: (users, actions in the window, pandas?)
    "p1": (200_000, 5_000_000, True),
    "p1b": (1_000_000, 20_000_000, False),
}
QUICK_SIZES = {"p1": (20_000, 500_000, True), "p1b": (100_000, 2_000_000, False)}
# Older history outside the window, as a real table holds: a quarter more.
OLDER_SHARE = 0.25
LOAD_CHUNK = 1_000_000
PANDAS_VARIANTS = {
    "typical": "(read_sql, executemany)",
    "copy": "at its best (COPY both ways)",
}
POSTGRES_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "max_parallel_workers_per_gather",
    "jit",
    "fsync",
    "synchronous_commit",
)


def log(message: str) -> None:
    print(f"bench p1: {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def peak_rss_mib() -> float:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- The child: load one size, measure ---------------------------------------------


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")
    # Only the database matters here: no secrets, no HTTP.
    os.environ.setdefault("CCWEB_TESTING", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def load(users: int, actions: int, window_days: int) -> dict[str, float]:
    """Replace every user and action with synthetic ones; seconds taken."""
    from django.core.management import call_command
    from django.db import connection

    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(
            "TRUNCATE user_segments, rfm_runs, user_actions, actions_outbox, "
            "site_visits, accounts_user RESTART IDENTITY CASCADE"
        )
        rebuild = _drop_secondary_structures(cursor)
        cursor.execute(
            "INSERT INTO accounts_user (password, is_superuser, username, "
            "first_name, last_name, email, is_staff, is_active, date_joined, "
            "nickname) "
            "SELECT '!', false, 'bench-' || g, '', '', '', false, true, now(), '' "
            "FROM generate_series(1, %s) AS g",
            [users],
        )
        older = int(actions * OLDER_SHARE)
        for first in range(0, actions + older, LOAD_CHUNK):
            count = min(LOAD_CHUNK, actions + older - first)
            in_window = first < actions
            _insert_actions(cursor, users, count, window_days, in_window)
            log(f"loaded {first + count:,} of {actions + older:,} actions")
        for statement in rebuild:
            cursor.execute(statement)
    loaded = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE accounts_user")
        cursor.execute("VACUUM ANALYZE user_actions")
    return {"load_seconds": round(loaded, 1)}


def _drop_secondary_structures(cursor) -> list[str]:
    """Drop user_actions' indexes and keys but the primary key; the DDL to redo."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'user_actions'::regclass AND contype IN ('u', 'f')"
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'user_actions' "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'user_actions'::regclass)"
    )
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE user_actions DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes] + [
        f'ALTER TABLE user_actions ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ]


def _insert_actions(
    cursor, users: int, count: int, window_days: int, in_window: bool
) -> None:
    # A skewed activity: a few users act a lot, a fifth never act at all.
    # One action in ten is a purchase. The window's actions spread over its
    # days; older ones over the two windows before it.
    days = window_days - 0.01
    cursor.execute(
        "INSERT INTO user_actions (user_id, action_type, action_timestamp, value, "
        "metadata, event_id, created_at) "
        "SELECT 1 + floor(power(random(), 2) * %(active)s)::bigint, "
        "CASE WHEN random() < 0.1 THEN 'purchase' ELSE 'spin' END, "
        "now() - make_interval(secs => (%(base)s + random() * %(span)s) * 86400), "
        "CASE WHEN random() < 0.1 THEN round((random() * 400)::numeric, 2) "
        "ELSE 0 END, "
        "'{}'::jsonb, gen_random_uuid(), now() "
        "FROM generate_series(1, %(count)s)",
        {
            "active": int(users * 0.8),
            "count": count,
            "base": 0 if in_window else window_days,
            "span": days if in_window else 2 * days,
        },
    )


def postgres_settings() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        values = {}
        for name in POSTGRES_SETTINGS:
            cursor.execute(f"SHOW {name}")
            values[name] = cursor.fetchone()[0]
    return values


def measure_floor(as_of: datetime) -> float:
    """The bare aggregation, consumed on the server (no rows to the client)."""
    from django.db import connection, transaction

    from segments.management.commands.explain_queries import rfm_aggregation_sql
    from segments.rfm import BATCH_WORK_MEM

    sql, params = rfm_aggregation_sql(as_of)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        # The same memory budget as the batch.
        cursor.execute(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(
            "SELECT count(*), max(last_at), "  # noqa: S608
            "sum(frequency), sum(monetary) "
            f"FROM ({sql}) AS per_user (user_id, last_at, frequency, monetary)",
            params,
        )
        cursor.fetchone()
    return time.monotonic() - started


def measure_batch(as_of: datetime) -> tuple[float, dict[str, int]]:
    from segments.rfm import compute_rfm_and_update_segments

    started = time.monotonic()
    summary = compute_rfm_and_update_segments(as_of)
    if summary.status != "succeeded":
        raise RuntimeError(f"the batch did not run: {summary.status}")
    return time.monotonic() - started, summary.groups


def measure(users: int, actions: int, repeat: int, with_pandas: bool) -> dict:
    setup_django()
    from django.conf import settings

    window_days = settings.RFM_WINDOW_DAYS
    result: dict[str, Any] = {"users": users, "actions": actions, "repeat": repeat}
    result.update(load(users, actions, window_days))
    result["postgres"] = postgres_settings()
    from segments.rfm import BATCH_WORK_MEM

    result["batch_work_mem"] = BATCH_WORK_MEM
    as_of = datetime.now(UTC)
    result["rss_after_load_mib"] = round(peak_rss_mib(), 1)

    result["load_average_before"] = load_average()
    floors, batches = [], []
    groups: dict[str, int] = {}
    for round_number in range(repeat):
        floors.append(measure_floor(as_of))
        seconds, groups = measure_batch(as_of)
        batches.append(seconds)
        log(
            f"round {round_number + 1}: floor {floors[-1]:.2f}s, "
            f"batch {batches[-1]:.2f}s"
        )
    result.update(
        floor_seconds=[round(value, 3) for value in floors],
        batch_seconds=[round(value, 3) for value in batches],
        # The first batch inserts every row; later ones update, as nightly.
        floor_median=round(statistics.median(floors), 3),
        batch_median=round(statistics.median(batches[1:] or batches), 3),
        groups=groups,
        batch_peak_rss_mib=round(peak_rss_mib(), 1),
        load_average_after=load_average(),
    )

    if with_pandas:
        from tests.benchmarks.rfm_pandas import run_pandas_rfm

        for variant in ("typical", "copy"):
            seconds, pandas_groups = run_pandas_rfm(as_of, window_days, variant)
            log(f"pandas ({variant}): {seconds:.2f}s")
            result[f"pandas_{variant}_seconds"] = round(seconds, 3)
            result[f"pandas_{variant}_agrees"] = pandas_groups == groups
        result["pandas_peak_rss_mib"] = round(peak_rss_mib(), 1)
    return result


# --- The parent: both sizes, the report ----------------------------------------------


def run_child(name: str, users: int, actions: int, pandas: bool, env) -> dict:
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.rfm",
        "measure",
        "--users",
        str(users),
        "--actions",
        str(actions),
    ]
    if pandas:
        command.append("--pandas")
    log(f"{name}: {users:,} users, {actions:,} actions in the window")
    output = subprocess.run(
        command, cwd=REPO, env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def services(*args: str) -> None:
    subprocess.run([sys.executable, "scripts/services.py", *args], cwd=REPO, check=True)


def start_postgres(state_dir: Path) -> dict[str, str]:
    state_dir.chmod(0o755)
    services("start", "postgres", "--dir", str(state_dir))
    env = {}
    for line in (state_dir / "env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


def report(results: dict[str, dict], command: str, quick: bool):
    from tests.benchmarks.harness import Check, Section, machine_info, now_utc

    section = Section("p1", "RFM batch")
    section.measured_at = now_utc()
    section.machine = machine_info()
    section.command = command
    p1 = results["p1"]
    floor, batch = p1["floor_median"], p1["batch_median"]
    section.checks.append(
        Check(
            f"P1 batch, {p1['users']:,} users / {p1['actions']:,} actions",
            f"{batch:.2f} s",
            f"{floor:.2f} s (bare aggregation)",
            batch / floor,
            "≤ 3 x the floor",
            batch <= 3 * floor,
            ratio_format="times",
        )
    )
    for variant, how in PANDAS_VARIANTS.items():
        key = f"pandas_{variant}_seconds"
        if key not in p1:
            continue
        speedup = p1[key] / batch
        section.checks.append(
            Check(
                f"P1 pandas {how}, same data and rules",
                f"{p1[key]:.2f} s",
                f"{batch:.2f} s (the batch)",
                speedup,
                "batch ≥ 5 x faster",
                speedup >= 5,
                ratio_format="times",
            )
        )
    if "p1b" in results:
        p1b = results["p1b"]
        section.checks.append(
            Check(
                f"P1b batch, {p1b['users']:,} users / {p1b['actions']:,} actions",
                f"{p1b['batch_median']:.2f} s",
                f"{p1b['floor_median']:.2f} s (bare aggregation)",
                p1b["batch_median"] / p1b["floor_median"],
                "completes",
                True,
                ratio_format="times",
            )
        )
        growth = p1b["batch_peak_rss_mib"] / p1["batch_peak_rss_mib"]
        section.checks.append(
            Check(
                "P1b peak RSS of the batch's process (ru_maxrss)",
                f"{p1b['batch_peak_rss_mib']:.0f} MiB at {p1b['users']:,} users",
                f"{p1['batch_peak_rss_mib']:.0f} MiB at {p1['users']:,} users",
                growth,
                "flat: ≤ 1.1 x",
                growth <= 1.10,
                ratio_format="times",
            )
        )
    section.notes.extend(notes(results, quick))
    section.raw = results
    return section


def notes(results: dict[str, dict], quick: bool) -> list[str]:
    p1 = results["p1"]
    pg = p1["postgres"]
    lines = [
        f"PostgreSQL {pg['server_version']} from scripts/services.py on the same "
        f"machine: shared_buffers {pg['shared_buffers']}, fsync {pg['fsync']}, "
        f"synchronous_commit {pg['synchronous_commit']}, work_mem {pg['work_mem']} "
        f"(the batch sets work_mem {p1['batch_work_mem']} for its transaction, "
        "the floor too), max_parallel_workers_per_gather "
        f"{pg['max_parallel_workers_per_gather']}, jit {pg['jit']}.",
        "Data: synthetic users and actions loaded server-side; 80 % of users "
        "act, skewed (a few act a lot); one action in ten carries a value; "
        f"{int(OLDER_SHARE * 100)} % more actions lie before the window, so the "
        "window is a range of user_actions_window_idx, not the whole table.",
        f"Times are medians of {p1['repeat']} alternating runs (floor, batch); "
        "the batch median leaves out its first run, which inserts every segment "
        "row, while the nightly runs update them. All runs: floor "
        f"{p1['floor_seconds']} s, batch {p1['batch_seconds']} s.",
        "Floor: `SELECT user_id, max(action_timestamp), count(*), sum(value) "
        "... GROUP BY user_id` over the window, consumed on the server; "
        "PostgreSQL may run it with parallel workers.",
    ]
    if "pandas_copy_seconds" in p1:
        agree = p1["pandas_copy_agrees"] and p1["pandas_typical_agrees"]
        lines.append(
            "pandas: the window read into a data frame, groupby, rank-based "
            "scores, the rules with numpy.select, every user's row written back "
            "with the same upsert, in one transaction; typical = "
            "`pandas.read_sql` in and `executemany` out, COPY = COPY to CSV and "
            "`read_csv` in, COPY into a temporary table and one upsert out. "
            "Their groups "
            + ("match" if agree else "**differ from**")
            + " the batch's. Peak RSS of the process after pandas: "
            f"{p1['pandas_peak_rss_mib']:.0f} MiB, against "
            f"{p1['batch_peak_rss_mib']:.0f} MiB for the batch alone."
        )
    batch = p1["batch_median"]
    if "pandas_copy_seconds" in p1 and p1["pandas_copy_seconds"] < 5 * batch:
        lines.append(
            "Against pandas at its best the batch is ahead by less than the "
            "target: most of the batch's time is the floor itself (PostgreSQL's "
            "hash aggregation of every action of the window, which no client "
            "can skip either), while that pandas path moves three narrow "
            "columns through COPY and groups float64s in numpy; it also needs "
            "gigabytes of memory where the batch needs none."
        )
    for name, result in results.items():
        lines.append(
            f"{name.upper().replace('B', 'b')}: data loaded in "
            f"{result['load_seconds']} s; groups "
            f"{result['groups']}; load average (1 / 5 / 15 min) "
            f"{result.get('load_average_before', 'not recorded')} before the "
            f"timed rounds, {result.get('load_average_after', 'not recorded')} "
            "after the batch's."
        )
    if quick:
        lines.append("Quick mode: small sizes, a smoke check, not the targets' sizes.")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.rfm")
    sub = parser.add_subparsers(dest="mode")
    one = sub.add_parser("measure", help="one size, JSON on stdout")
    one.add_argument("--users", type=int, required=True)
    one.add_argument("--actions", type=int, required=True)
    one.add_argument("--repeat", type=int, default=3)
    one.add_argument("--pandas", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--republish",
        type=Path,
        metavar="JSON",
        help="only rewrite the docs section from a raw file of bench-results/",
    )
    parser.add_argument(
        "--only", choices=sorted(SIZES), help="one of the two sizes (default both)"
    )
    args = parser.parse_args(argv)

    if args.mode == "measure":
        result = measure(args.users, args.actions, args.repeat, args.pandas)
        print(json.dumps(result))
        return 0

    if args.republish:
        return republish(args.republish)

    sizes = QUICK_SIZES if args.quick else SIZES
    names = [args.only] if args.only else list(sizes)
    env = dict(os.environ)
    state_dir = None
    if not env.get("DATABASE_URL"):
        state_dir = Path(tempfile.mkdtemp(prefix="ccweb-bench-rfm-"))
        env.update(start_postgres(state_dir))
    try:
        results = {name: run_child(name, *sizes[name], env=env) for name in names}
    finally:
        if state_dir is not None:
            services("destroy", "--dir", str(state_dir))
    if "p1" not in results:
        print(json.dumps(results, indent=2))
        return 0

    command = "python -m tests.benchmarks.rfm" + (" --quick" if args.quick else "")
    section = report(results, os.environ.get("BENCH_COMMAND", command), args.quick)
    raw_path = publish(section)
    for check in section.checks:
        log(
            f"{check.what}: {check.measured} | floor {check.floor} | "
            f"{check.ratio_text()} | {check.verdict()}"
        )
    log(f"raw figures in {raw_path}")
    return 0


def publish(section, keep_raw: bool = True) -> Path | None:
    """The raw JSON to bench-results/, the section to docs/benchmarks.md."""
    from tests.benchmarks import harness

    raw_path = None
    if keep_raw:
        harness.RESULTS_DIR.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        raw_path = harness.RESULTS_DIR / f"{stamp}-{section.key}.json"
        raw = json.dumps(asdict(section), indent=2, default=str)
        raw_path.write_text(raw + "\n")

    block = harness.render(section).replace(
        f"## P1 — {section.title}", f"## P1 / P1b — {section.title}", 1
    )
    # Read just before writing: other benchmarks edit the same file.
    path = harness.DOCS_PATH
    document = harness.with_intro(path.read_text() if path.exists() else "")
    document = harness.replace_block(document, section.key, block)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(document)
    os.replace(temporary, path)
    return raw_path


def republish(raw_path: Path) -> int:
    """Render the section again from a saved raw JSON (bench-results/)."""
    from tests.benchmarks.harness import Section

    saved = json.loads(raw_path.read_text())
    fresh = report(saved["raw"], saved["command"], quick=False)
    section = Section(
        **{
            **saved,
            "title": fresh.title,
            "checks": fresh.checks,
            "notes": fresh.notes,
        }
    )
    publish(section, keep_raw=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
