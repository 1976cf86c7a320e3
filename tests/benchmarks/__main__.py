"""Run the benchmarks: `python -m tests.benchmarks [--quick] [p2 p3 p4 p5 p6]`.

Expects the environment `scripts/bench.sh` prepares: servers in
DATABASE_URL, REDIS_URL and KAFKA_BROKER, production settings (DEBUG off)
and a migrated database. Each benchmark's section of docs/benchmarks.md is
rewritten as soon as it finishes; one that cannot run says why in its
section and the others still run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.benchmarks.harness import (
    REPO,
    RESULTS_DIR,
    RunSettings,
    Section,
    machine_info,
    now_utc,
    publish,
)

logger = logging.getLogger("tests.benchmarks")

# The HTTP benchmarks first, on one server; P3 last of them because it grows
# user_actions the most. The Kafka paths run after the web servers stopped.
ORDER = ("p2", "p4", "p3", "p5", "p6")
TITLES = {
    "p2": "POST /api/actions under gunicorn",
    "p3": "POST /api/actions/batch, 500 events a request",
    "p4": "GET /api/user-segments/{id}/recommendation",
    "p5": "outbox relay draining pending events to Kafka",
    "p6": "consume_actions reading messages",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("--quick", action="store_true", help="short smoke runs")
    parser.add_argument(
        "benchmarks", nargs="*", metavar="|".join(ORDER), help="default: all"
    )
    args = parser.parse_args(argv)
    chosen = [name.lower() for name in args.benchmarks] or list(ORDER)
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (P1 has its own command)")
    args.benchmarks = [name for name in ORDER if name in chosen]
    return args


def keep_logs(work_dir: Path) -> None:
    """Copy the servers' logs next to the raw figures; the work folder goes."""
    logs = sorted(work_dir.glob("*.log"))
    if not logs:
        return
    target = RESULTS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-logs"
    target.mkdir(parents=True, exist_ok=True)
    for log in logs:
        shutil.copy2(log, target / log.name)
    logger.info("server logs in %s", target)


def scrub_paths(text: str, work_dir: Path) -> str:
    """Keep this machine's folders out of the committed report."""
    text = text.replace(str(work_dir), "<work folder>")
    text = text.replace(str(REPO) + "/", "")
    return text.replace(tempfile.gettempdir() + "/", "<temp>/")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")
    import django

    django.setup()
    # Progress in plain lines on stderr, apart from ccweb's JSON logs.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bench: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    from tests.benchmarks import kafka_paths, web

    work_dir = Path(
        os.environ.get("BENCH_WORK_DIR") or tempfile.mkdtemp(prefix="ccweb-bench-")
    )
    command = os.environ.get("BENCH_COMMAND") or "scripts/bench.sh " + " ".join(
        sys.argv[1:]
    )
    settings = RunSettings.create(args.quick, command.strip(), work_dir)
    machine = machine_info()
    stack = web.HttpStack(settings)
    runners: dict[str, Callable[[], Section]] = {
        "p2": lambda: web.run_p2(stack),
        "p4": lambda: web.run_p4(stack),
        "p3": lambda: web.run_p3(stack),
        "p5": lambda: kafka_paths.run_p5(settings),
        "p6": lambda: kafka_paths.run_p6(settings),
    }

    failures = 0
    # Read once, before the first section: later readings would mostly show
    # the load of the sections before them, not other work.
    busy_before = os.getloadavg()[0]
    try:
        for name in args.benchmarks:
            if name in ("p5", "p6"):
                # The relay beside the web server would drain P5's outbox.
                stack.stop()
            logger.info("running %s", name.upper())
            measured_at = now_utc()
            try:
                section = runners[name]()
            except Exception as error:
                logger.error("%s failed:\n%s", name.upper(), traceback.format_exc())
                failures += 1
                section = Section(name, TITLES[name]).missing(
                    f"the benchmark failed: {type(error).__name__}: {error}"
                )
            section.notes = [scrub_paths(note, work_dir) for note in section.notes]
            section.measured_at = measured_at
            section.machine = machine
            section.command = settings.command
            cores = os.cpu_count() or 1
            if busy_before > cores:
                section.notes.insert(
                    0,
                    f"The machine was busy when this run started (1-minute load "
                    f"average {busy_before:.1f} on {cores} cores): other work "
                    "competed for the CPU, so these figures are noisy; re-run "
                    "on a quiet machine before relying on them.",
                )
            if settings.quick:
                section.notes.append(
                    "Quick mode: shorter runs and fewer events; figures are a smoke "
                    "check, not the published ones."
                )
            raw_path = publish(section)
            for check in section.checks:
                logger.info(
                    "%s | %s | %s | floor %s | %s | %s",
                    name.upper(),
                    check.what,
                    check.measured,
                    check.floor,
                    check.ratio_text(),
                    check.verdict(),
                )
            for note in section.notes:
                logger.info("%s note: %s", name.upper(), note)
            logger.info("%s raw figures in %s", name.upper(), raw_path)
    finally:
        stack.stop()
        keep_logs(work_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
