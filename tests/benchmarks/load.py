"""HTTP load with wrk: prepared requests in, throughput and percentiles out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import millis, rate

REPLAY_SCRIPT = Path(__file__).with_name("replay.lua")
THREADS = 2
CONNECTIONS = 32


@dataclass(frozen=True)
class PreparedRequest:
    method: str
    path: str
    token: str = ""
    body: str = ""

    def line(self) -> str:
        for part in (self.path, self.token, self.body):
            if "\t" in part or "\n" in part:
                raise ValueError("request parts must not hold tabs or newlines")
        return f"{self.method}\t{self.path}\t{self.token}\t{self.body}"


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    unexpected_status: int
    socket_errors: dict[str, int]
    output: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        """Every answer had the expected status and no socket failed."""
        failures = sum(
            count for name, count in self.socket_errors.items() if name != "status"
        )
        return self.unexpected_status == 0 and failures == 0

    def summary(self, unit: str = "req/s") -> str:
        text = (
            f"{rate(self.per_second, unit)}, p50 {millis(self.p50_us)}, "
            f"p99 {millis(self.p99_us)}"
        )
        if not self.clean:
            text += f" ({self.problems()})"
        return text

    def problems(self) -> str:
        parts = []
        if self.unexpected_status:
            parts.append(f"{self.unexpected_status:,} unexpected statuses")
        for name, count in self.socket_errors.items():
            if count and name != "status":
                parts.append(f"{count:,} socket {name} errors")
        return ", ".join(parts) or "clean"

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in vars(self).items() if key != "output"}
        data["per_second"] = round(self.per_second, 1)
        return data


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk not found: apt-get install wrk (scripts/bench.sh does)")
    return found


def write_requests(path: Path, requests: list[PreparedRequest]) -> Path:
    path.write_text("\n".join(request.line() for request in requests) + "\n")
    return path


def run_wrk(
    label: str,
    base_url: str,
    requests_file: Path,
    *,
    seconds: int,
    expect_status: int,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
    timeout_seconds: int = 10,
) -> LoadResult:
    """Run wrk once against `base_url`, replaying `requests_file`."""
    command = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_seconds}s",
        "-s",
        str(REPLAY_SCRIPT),
        base_url,
    ]
    env = {
        **os.environ,
        "BENCH_WRK_REQUESTS": str(requests_file),
        "BENCH_WRK_EXPECT": str(expect_status),
    }
    completed = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    output = completed.stdout + completed.stderr
    figures = parse_figures(completed.stdout)
    if completed.returncode != 0 or figures is None:
        raise RuntimeError(
            f"wrk failed for {label} (exit {completed.returncode}):\n{output}"
        )
    return result_from_figures(label, figures, output)


def parse_figures(stdout: str) -> dict[str, Any] | None:
    """The JSON line replay.lua's done() prints, or None when there is none."""
    figures = None
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures = json.loads(line.removeprefix("BENCH_JSON "))
    return figures


def result_from_figures(label: str, figures: dict[str, Any], output: str) -> LoadResult:
    latency = figures["latency_us"]
    return LoadResult(
        label=label,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1_000_000,
        p50_us=latency["p50"],
        p90_us=latency["p90"],
        p99_us=latency["p99"],
        max_us=latency["max"],
        unexpected_status=figures["unexpected_status"],
        socket_errors=figures["errors"],
        output=output,
    )


def measure(
    label: str,
    base_url: str,
    requests_file: Path,
    *,
    warmup_seconds: int,
    seconds: int,
    expect_status: int,
    connections: int = CONNECTIONS,
) -> LoadResult:
    """A warm-up whose figures are thrown away, then the measured run."""
    if warmup_seconds:
        run_wrk(
            f"{label} (warm-up)",
            base_url,
            requests_file,
            seconds=warmup_seconds,
            expect_status=expect_status,
            connections=connections,
        )
    return run_wrk(
        label,
        base_url,
        requests_file,
        seconds=seconds,
        expect_status=expect_status,
        connections=connections,
    )
