"""The benchmark report: figures parsed right, sections replaced, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import harness, load
from tests.benchmarks.__main__ import parse_args, scrub_paths

WRK_LINE = (
    'BENCH_JSON {"requests": 20000, "duration_us": 20000000, "bytes": 1, '
    '"unexpected_status": 0, "errors": {"connect": 0, "read": 0, "write": 0, '
    '"status": 0, "timeout": 0}, "latency_us": {"p50": 2500, "p90": 8000, '
    '"p99": 31000, "max": 90000, "mean": 3100.5}}'
)
P1_BLOCK = "<!-- bench:p1 -->\n## P1 — RFM\n\nfigures of P1\n<!-- /bench:p1 -->"


def section(verdict: bool | None = True) -> harness.Section:
    check = harness.Check(
        "POST vs health", "500 req/s", "1,000 req/s", 0.5, "≥ 40 %", verdict
    )
    return harness.Section(
        "p2", "POST /api/actions", checks=[check], notes=["a note"], command="make"
    )


def test_it_reads_throughput_and_percentiles_from_wrk_output():
    figures = load.parse_figures("Running 20s test\n" + WRK_LINE + "\n")

    result = load.result_from_figures("health", figures, "")

    assert (result.per_second, result.p99_us) == (1000.0, 31000)


def test_it_finds_no_figures_in_output_without_the_json_line():
    assert load.parse_figures("Running 20s test\nRequests/sec: 10\n") is None


@pytest.mark.parametrize(
    ("unexpected", "timeouts", "clean"),
    [(0, 0, True), (3, 0, False), (0, 2, False)],
)
def test_it_calls_a_run_clean_only_without_wrong_answers_or_timeouts(
    unexpected, timeouts, clean
):
    figures = load.parse_figures(WRK_LINE)
    figures["unexpected_status"] = unexpected
    figures["errors"]["timeout"] = timeouts

    result = load.result_from_figures("actions", figures, "")

    assert result.clean is clean


def test_it_replaces_only_its_own_section():
    document = (
        f"# Benchmarks\n\n{P1_BLOCK}\n\n<!-- bench:p2 -->\nold\n<!-- /bench:p2 -->\n"
    )

    updated = harness.replace_block(document, "p2", harness.render(section()))

    assert P1_BLOCK in updated
    assert "old" not in updated and "| POST vs health |" in updated


def test_it_appends_a_section_the_document_lacks():
    document = f"# Benchmarks\n\n{P1_BLOCK}\n"

    updated = harness.replace_block(
        document, "p2", "<!-- bench:p2 -->x<!-- /bench:p2 -->"
    )

    assert updated.index(P1_BLOCK) < updated.index("<!-- bench:p2 -->")


@pytest.mark.parametrize(
    "document",
    ["", "# Benchmarks\n\n" + P1_BLOCK + "\n", P1_BLOCK + "\n"],
)
def test_it_adds_the_intro_once_and_keeps_what_was_there(document):
    once = harness.with_intro(document)

    twice = harness.with_intro(once)

    assert once == twice
    assert once.count("<!-- bench:intro -->") == 1 and once.count("# Benchmarks") == 1
    assert P1_BLOCK in once or not document


@pytest.mark.parametrize(
    ("verdict", "shown"),
    [(True, "| pass |"), (False, "| **fail** |"), (None, "| not measured |")],
)
def test_it_shows_the_verdict_of_each_check(verdict, shown):
    assert shown in harness.render(section(verdict))


def test_it_judges_no_reference_figure():
    check = harness.Check("as a process", "1 msg/s", "2 msg/s", 0.5, "—", False)
    check.reference = True

    assert check.verdict() == "for reference"


def test_it_keeps_machine_folders_out_of_the_report(tmp_path: Path):
    note = f"gunicorn exited, see {tmp_path}/gunicorn.log"

    assert str(tmp_path) not in scrub_paths(note, tmp_path)


def test_it_runs_the_benchmarks_in_a_fixed_order_whatever_the_arguments():
    assert parse_args(["P5", "p2"]).benchmarks == ["p2", "p5"]


def test_it_refuses_a_benchmark_it_does_not_run():
    with pytest.raises(SystemExit):
        parse_args(["p1"])
