"""The Docker files cannot be run here (no engine), so they are checked offline."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker" / "compose.yaml"


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_it_validates_compose_against_the_compose_specification():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_every_process_the_product_needs():
    services = load_compose()["services"]

    assert {"backend", "worker", "beat", "postgres", "redis", "kafka"} <= set(services)


def test_it_only_uses_commands_the_entrypoint_knows():
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    known = set(re.findall(r"^  (\w+)\)$", entrypoint, flags=re.MULTILINE))
    services = load_compose()["services"]

    commands = {
        spec["command"][0]
        for spec in services.values()
        if spec.get("build") or spec.get("image") == "ccweb:latest"
    }

    assert commands <= known


def test_it_sets_only_variables_the_settings_read():
    settings_source = (REPO / "ccweb" / "settings.py").read_text()
    app_env = load_compose()["services"]["backend"]["environment"]

    unread = [name for name in app_env if f'"{name}"' not in settings_source]

    assert unread == []


def test_it_runs_the_image_as_a_non_root_user():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()

    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)
