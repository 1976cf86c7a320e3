"""R5: schemathesis over the served OpenAPI schema, authenticated as a user.

The schemathesis CLI runs against the live gunicorn server with a normal
user's JWT (its own id goes into `user_id` fields, see
schemathesis_hooks.py) and two checks: no 5xx, and every response matching
the schema of its documented status. Every operation of the schema is
tested; none is excluded. The staff-only operations, which refuse a normal
user before reading the input, get a second run with a staff user's JWT.
The NDJSON event stream of each run is read back to count every request
actually sent and to describe each failure.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.drills.harness import REPO, manage, report, sign_up

pytestmark = pytest.mark.drill

CHECKS = "not_a_server_error,response_schema_conformance"
SEED = os.environ.get("DRILL_FUZZ_SEED", "20261204")
# One worker: with several threads, Hypothesis's description of lambdas
# (ast.parse) trips a CPython 3.11 bug now and then ("AST constructor
# recursion depth mismatch"), which schemathesis reports as a runtime error.
WORKERS = "1"
# PATCH /api/user-segments/{user_id} (risk profile) is for staff only.
STAFF_ONLY_FILTER = ("--include-method", "PATCH")


@dataclass
class Finding:
    operation: str
    check: str
    title: str
    request: str
    response: str

    def __str__(self) -> str:
        return (
            f"{self.operation} [{self.check}: {self.title}]\n"
            f"  request:  {self.request}\n  response: {self.response}"
        )


@dataclass
class Run:
    exit_code: int
    output: str
    summary: dict
    statuses: Counter = field(default_factory=Counter)
    transport_errors: int = 0
    # Errors schemathesis hit while generating or sending (not check failures).
    errors: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


def _decode(payload: dict | None, limit: int = 600) -> str:
    if not payload:
        return ""
    if "$base64" in payload:
        text = base64.b64decode(payload["$base64"]).decode("utf-8", "replace")
    else:
        text = json.dumps(payload)
    return text[:limit]


def _describe_request(interaction: dict) -> str:
    request = interaction.get("request") or {}
    return (
        f"{request.get('method')} {request.get('uri')} {_decode(request.get('body'))}"
    )


def _describe_response(interaction: dict) -> str:
    response = interaction.get("response")
    if not response:
        return "no response"
    return f"{response['status_code']} {_decode(response.get('content'))}"


def read_events(run: Run, ndjson: Path) -> None:
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        error = event.get("NonFatalError")
        if error:
            value = error["value"]
            run.errors.append(
                f"{error.get('label')} ({error.get('phase')}): "
                f"{value['type']}: {value['message']}"
            )
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        interactions = recorder.get("interactions", {})
        for interaction in interactions.values():
            response = interaction.get("response")
            if response:
                run.statuses[response["status_code"]] += 1
            else:
                run.transport_errors += 1
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] == "success":
                    continue
                failure = (check.get("failure_info") or {}).get("failure") or {}
                key = (
                    failure.get("operation", "?"),
                    check["name"],
                    failure.get("title", ""),
                )
                interaction = interactions.get(case_id, {})
                run.findings.setdefault(
                    key,
                    Finding(
                        operation=key[0],
                        check=key[1],
                        title=key[2],
                        request=_describe_request(interaction),
                        response=_describe_response(interaction),
                    ),
                )


def run_errors_short(errors: list[str]) -> list[str]:
    return [error[:160] for error in errors]


def fuzz(web, account, examples: int, report_dir: Path, *only: str) -> Run:
    """Run the schemathesis CLI as `account`; `only` adds filter options."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.drills.schemathesis_hooks",
        "DRILL_USER_ID": str(account.user_id),
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{web.url}/api/schema",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {account.access}",
        "--max-examples",
        str(examples),
        "--seed",
        SEED,
        "--workers",
        WORKERS,
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--report",
        "json,ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
        *only,
    ]

    finished = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    output = finished.stdout + finished.stderr
    summaries = list(report_dir.glob("json-*.json"))
    assert summaries, output[-5000:]
    result = Run(
        exit_code=finished.returncode,
        output=output,
        summary=json.loads(summaries[0].read_text()),
    )
    read_events(result, next(report_dir.glob("ndjson-*.ndjson")))
    for finding in result.findings.values():
        print(f"R5 finding: {finding}")
    for error in result.errors:
        print(f"R5 error: {error}")
    return result


def report_run(name: str, result: Run, min_requests: int) -> None:
    operations = result.summary["operations"]
    report(
        name,
        not result.findings
        and result.server_errors == 0
        and result.requests >= min_requests
        and operations["tested"] == operations["selected"],
        requests=result.requests,
        operations_tested=f"{operations['tested']}/{operations['selected']}",
        server_errors=result.server_errors,
        schema_violations=sum(
            1
            for finding in result.findings.values()
            if finding.check != "not_a_server_error"
        ),
        statuses=dict(sorted(result.statuses.items())),
        tool_errors=run_errors_short(result.errors),
        seed=SEED,
        seconds=round(result.summary["running_time"], 1),
    )


@pytest.fixture(scope="module")
def user_run(web, account, scale, work_dir) -> Run:
    """Every operation, as a normal user."""
    result = fuzz(
        web, account, scale.fuzz_examples_per_operation, work_dir / "fuzz-user"
    )
    report_run("R5 schemathesis", result, scale.fuzz_min_requests)
    return result


@pytest.fixture(scope="module")
def staff_run(web, migrated, scale, work_dir) -> Run:
    """The staff-only operations (they refuse a normal user outright), as staff."""
    staff = sign_up(web.url, "staff")
    manage(
        migrated,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.filter(pk={staff.user_id}).update(is_staff=True)",
    )
    # Gives every user a segment row, so the writes find one to change.
    manage(migrated, "compute_rfm")
    # Few operations: more examples each, for the same kind of budget.
    result = fuzz(
        web,
        staff,
        scale.fuzz_examples_per_operation * 5,
        work_dir / "fuzz-staff",
        *STAFF_ONLY_FILTER,
    )
    report_run("R5 schemathesis, staff-only operations", result, 1)
    return result


@pytest.fixture(scope="module", params=["user", "staff"])
def run(request) -> Run:
    return request.getfixturevalue(f"{request.param}_run")


def test_it_sends_enough_requests(user_run, scale):
    assert user_run.requests >= scale.fuzz_min_requests, user_run.output[-3000:]


def test_it_tests_every_operation(user_run):
    operations = user_run.summary["operations"]

    assert operations["tested"] == operations["selected"] == operations["total"]


def test_it_tests_the_staff_only_operations_as_staff(staff_run):
    operations = staff_run.summary["operations"]

    assert operations["tested"] == operations["selected"] > 0


def test_it_gets_no_server_error(run):
    assert run.server_errors == 0, "\n".join(map(str, run.findings.values()))


def test_it_gets_only_responses_that_match_the_schema(run):
    findings = [str(finding) for finding in run.findings.values()]

    assert findings == []


NETWORK_ERRORS = ("ConnectionError", "Timeout", "ReadTimeout", "ChunkedEncodingError")


def test_it_never_loses_the_connection_or_times_out(run):
    """A hang or a dropped connection is a server failure too.

    Other errors of the run (the fuzzer's own, e.g. a generator crash) do
    not fail the drill as long as every operation was still tested; they
    are printed with the figures.
    """
    network = [error for error in run.errors if any(n in error for n in NETWORK_ERRORS)]

    assert (run.transport_errors, network) == (0, [])
