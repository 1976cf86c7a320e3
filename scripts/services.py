#!/usr/bin/env python3
"""Start and stop the real PostgreSQL, Redis and Kafka that the tests use.

The servers run on free loopback ports under a state folder (default
`.services/` in the repository). `start` installs what is missing (Debian's
`postgresql` and `redis-server`, Kafka's jars through `docker/kafka/pom.xml`),
starts each server, waits until it answers and writes `env`, a file of
`KEY=value` lines with `DATABASE_URL`, `REDIS_URL` and `KAFKA_BROKER`.

    python3 scripts/services.py start            # all three
    python3 scripts/services.py stop
    python3 scripts/services.py stop kafka        # one of them (drills)
    python3 scripts/services.py start kafka       # again, same port and data

Only the standard library is used: this runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_STATE = REPO / ".services"
KAFKA_POM = REPO / "docker" / "kafka" / "pom.xml"
KAFKA_JARS = Path(
    os.environ.get("CCWEB_KAFKA_JARS", Path.home() / ".cache" / "ccweb" / "kafka-jars")
)
SERVICES = ("postgres", "redis", "kafka")
URL_VARIABLES = {
    "postgres": "DATABASE_URL",
    "redis": "REDIS_URL",
    "kafka": "KAFKA_BROKER",
}
READY_TIMEOUT_SECONDS = 90


class ServiceError(RuntimeError):
    """A server could not be installed or started; the message says why."""


def log(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check, what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise ServiceError(f"{what} did not become ready within {timeout:.0f}s")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(
            f"install {' '.join(packages)} (Debian packages) or set DATABASE_URL, "
            "REDIS_URL and KAFKA_BROKER to running servers"
        )
    log(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    run(["apt-get", "update", "-qq"], **quiet)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        **quiet,
    )


class State:
    """The state folder: one subfolder and one JSON file per server."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def info_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def load(self, name: str) -> dict:
        path = self.info_path(name)
        return json.loads(path.read_text()) if path.exists() else {}

    def save(self, name: str, info: dict) -> None:
        self.info_path(name).write_text(json.dumps(info, indent=2))

    def write_env(self) -> Path:
        urls = {
            "DATABASE_URL": self.load("postgres").get("url"),
            "REDIS_URL": self.load("redis").get("url"),
            "KAFKA_BROKER": self.load("kafka").get("url"),
        }
        env_file = self.root / "env"
        lines = [f"{key}={value}" for key, value in urls.items() if value]
        lines.append(f"CCWEB_SERVICES_DIR={self.root}")
        env_file.write_text("\n".join(lines) + "\n")
        return env_file


# --- PostgreSQL --------------------------------------------------------------
# initdb and pg_ctl refuse to run as root, so both run as the `postgres`
# system user that Debian's package creates.


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        apt_install("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise ServiceError(
            "PostgreSQL server binaries not found: apt-get install postgresql"
        )
    return Path(found[-1]).parent


def as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_postgres(state: State) -> None:
    info = state.load("postgres")
    bindir = postgres_bin()
    datadir = state.root / "postgres"
    port = info.get("port") or free_port()

    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg_user = pwd.getpwnam("postgres")
            os.chown(datadir, pg_user.pw_uid, pg_user.pw_gid)
        run(
            as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            stdout=subprocess.DEVNULL,
        )
        # Test servers trade durability for speed; they are thrown away.
        with open(datadir / "postgresql.conf", "a") as conf:
            conf.write(
                "fsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 200\n"
                "shared_buffers = 256MB\n"
            )

    if not port_open(port):
        run(
            as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(datadir / "server.log"),
                    "-o",
                    f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1",
                    "start",
                ]
            ),
            stdout=subprocess.DEVNULL,
        )
    wait_until(lambda: port_open(port), "PostgreSQL")

    url = f"postgres://postgres@127.0.0.1:{port}/ccweb"
    createdb = [
        str(bindir / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "postgres",
        "-tAc",
    ]
    exists = run(
        [*createdb, "SELECT 1 FROM pg_database WHERE datname = 'ccweb'"],
        capture_output=True,
    ).stdout.strip()
    if exists != "1":
        run([*createdb, "CREATE DATABASE ccweb"], stdout=subprocess.DEVNULL)
    state.save("postgres", {"port": port, "url": url, "bindir": str(bindir)})
    log(f"PostgreSQL ready on 127.0.0.1:{port}")


def stop_postgres(state: State) -> None:
    info = state.load("postgres")
    datadir = state.root / "postgres"
    if info and (datadir / "postmaster.pid").exists():
        subprocess.run(
            as_postgres(
                [
                    str(Path(info["bindir"]) / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            ),
            stdout=subprocess.DEVNULL,
            check=False,
        )


# --- Redis -------------------------------------------------------------------


def start_redis(state: State) -> None:
    info = state.load("redis")
    server = shutil.which("redis-server")
    if not server:
        apt_install("redis-server")
        server = shutil.which("redis-server")
    if not server:
        raise ServiceError("redis-server not found: apt-get install redis-server")
    workdir = state.root / "redis"
    workdir.mkdir(exist_ok=True)
    port = info.get("port") or free_port()

    if not port_open(port):
        run(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(workdir),
                "--pidfile",
                str(workdir / "redis.pid"),
                "--logfile",
                str(workdir / "redis.log"),
            ]
        )
    wait_until(lambda: port_open(port), "Redis")
    state.save("redis", {"port": port, "url": f"redis://127.0.0.1:{port}/0"})
    log(f"Redis ready on 127.0.0.1:{port}")


def stop_pidfile(pidfile: Path, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, sig)
    except (ValueError, ProcessLookupError):
        pidfile.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def stop_redis(state: State) -> None:
    stop_pidfile(state.root / "redis" / "redis.pid")


# --- Kafka (KRaft, single node) ----------------------------------------------


def kafka_classpath() -> str:
    marker = KAFKA_JARS / ".complete"
    stamp = KAFKA_POM.read_text()
    if not marker.exists() or marker.read_text() != stamp:
        if not shutil.which("mvn") or not shutil.which("java"):
            raise ServiceError(
                "Kafka needs Java 17+ and Maven: "
                "apt-get install openjdk-17-jre-headless maven"
            )
        log("fetching Kafka's jars from Maven Central (cached afterwards)")
        shutil.rmtree(KAFKA_JARS, ignore_errors=True)
        KAFKA_JARS.mkdir(parents=True)
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(KAFKA_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={KAFKA_JARS}",
                "-DincludeScope=runtime",
            ],
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(stamp)
    return f"{KAFKA_JARS}/*"


def kafka_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def start_kafka(state: State) -> None:
    info = state.load("kafka")
    classpath = kafka_classpath()
    workdir = state.root / "kafka"
    workdir.mkdir(exist_ok=True)
    port = info.get("port") or free_port()
    controller_port = info.get("controller_port") or free_port()
    config = workdir / "server.properties"

    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={workdir / 'data'}",
                "num.partitions=3",
                "auto.create.topics.enable=true",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "share.coordinator.state.topic.replication.factor=1",
                "",
            ]
        )
    )
    (workdir / "log4j2.properties").write_text(
        "\n".join(
            [
                "status = error",
                "appender.file.type = File",
                "appender.file.name = file",
                f"appender.file.fileName = {workdir / 'server.log'}",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = WARN",
                "rootLogger.appenderRef.file.ref = file",
                "",
            ]
        )
    )
    java = [
        shutil.which("java") or "java",
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
        "-cp",
        classpath,
    ]

    if not (workdir / "data" / "meta.properties").exists():
        run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                kafka_cluster_id(),
                "-c",
                str(config),
                "--ignore-formatted",
            ],
            stdout=subprocess.DEVNULL,
        )

    if not port_open(port):
        with open(workdir / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                [*java, "kafka.Kafka", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (workdir / "kafka.pid").write_text(str(process.pid))
    wait_until(lambda: port_open(port), "Kafka")
    state.save(
        "kafka",
        {"port": port, "controller_port": controller_port, "url": f"127.0.0.1:{port}"},
    )
    log(f"Kafka ready on 127.0.0.1:{port}")


def stop_kafka(state: State) -> None:
    stop_pidfile(state.root / "kafka" / "kafka.pid")


STARTERS = {"postgres": start_postgres, "redis": start_redis, "kafka": start_kafka}
STOPPERS = {"postgres": stop_postgres, "redis": stop_redis, "kafka": stop_kafka}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "destroy", "env"])
    parser.add_argument(
        "--missing",
        action="store_true",
        help="start only the servers whose URL variable is unset",
    )
    parser.add_argument("services", nargs="*", metavar="|".join(SERVICES))
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("CCWEB_SERVICES_DIR", DEFAULT_STATE)),
    )
    args = parser.parse_args(argv)
    state = State(args.dir.resolve())
    names = args.services or list(SERVICES)
    if args.missing:
        names = [name for name in names if not os.environ.get(URL_VARIABLES[name])]
    unknown = set(names) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service {', '.join(sorted(unknown))}")

    try:
        if args.command == "start":
            started = time.monotonic()
            for name in names:
                STARTERS[name](state)
            env_file = state.write_env()
            log(f"ready in {time.monotonic() - started:.1f}s; settings in {env_file}")
        elif args.command in ("stop", "destroy"):
            for name in reversed(names):
                STOPPERS[name](state)
            if args.command == "destroy":
                shutil.rmtree(state.root, ignore_errors=True)
        else:
            print(state.write_env().read_text(), end="")
    except (ServiceError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
