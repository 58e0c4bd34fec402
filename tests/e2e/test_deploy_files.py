"""The deployment files (docker-compose.yml, Procfile, Dockerfile, .env.example) run what the project has.

Docker cannot run here, so every command is checked against the code instead: the Celery app imports,
every celery subcommand and option is one the installed Celery accepts, the simulator's flags parse, and
every variable named in compose or .env.example is one letzflow (or the named third party) reads.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

APP_SERVICES = ("worker", "beat", "flower", "webhooks", "sim")
ONE_SHOT = ("createbucket",)
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}
#: Variables that other programs read: boto3, Flower, PostgreSQL/MinIO images, compose interpolation, beat.
OTHER_VARS = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "FLOWER_BASIC_AUTH",
    "POSTGRES_PASSWORD", "WORKER_CONCURRENCY", "LETZFLOW_SCHEDULES", "PORT",
}  # fmt: skip
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def argv(command: str | list[str]) -> list[str]:
    """A command as its argv, with ``${VAR:-default}`` replaced by its default (as compose and a shell do)."""
    text = command if isinstance(command, str) else shlex.join(command)
    return shlex.split(INTERPOLATION.sub(lambda m: m.group(2) or "", text))


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def run_help(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LETZAI_SIMULATOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def check_command(args: list[str]) -> None:
    """Assert ``args`` (a celery, simulator or letzflow command line) is one the project and its libraries
    accept."""
    if args[0] == "letzflow":
        from workers.cli import build_parser as cli_parser

        parsed = cli_parser().parse_args(args[1:])
        assert parsed.func is not None
        return
    if args[0] == "python":
        assert args[1:3] == ["-m", "letzai.sim"], args
        from letzai.sim.server import build_parser

        build_parser().parse_args(args[3:])
        return
    assert args[:3] == ["celery", "-A", "workers.app"], args
    subcommand = args[3]
    if subcommand == "flower":
        from flower.options import options

        for option in args[4:]:
            name = option.lstrip("-").split("=", 1)[0].replace("_", "-")
            assert name in options._options, f"flower has no option --{name}"
        result = run_help(["celery", "-A", "workers.app", "flower"])
    else:
        result = run_help(args)
    assert result.returncode == 0, f"{args}: {result.stderr[-2000:]}"
    assert "Usage:" in result.stdout


def test_compose_has_every_service_of_a_production_deployment() -> None:
    found = services()
    assert set(found) >= {"redis", "postgres", "minio", "createbucket", *APP_SERVICES}
    assert found["sim"].get("profiles") == ["offline"]
    assert all(not s.get("profiles") for name, s in found.items() if name != "sim")


def test_worker_scales_no_container_name_no_host_port() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert all("container_name" not in s for s in services().values())


def test_redis_is_durable_and_never_evicts_messages() -> None:
    redis = services()["redis"]
    args = argv(redis["command"])
    assert args[0] == "redis-server"
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"


def test_dependencies_wait_for_health_or_completion() -> None:
    found = services()
    for name, service in found.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in found[dependency], f"{name} waits for {dependency}'s health"
            else:
                assert condition == "service_completed_successfully" and dependency in ONE_SHOT
    for name in ("worker", "beat", "flower"):
        depends = found[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert found[name]["env_file"] == ".env"


def test_worker_consumes_every_queue_of_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("LETZAI_SIMULATOR", "1")
    get_settings.cache_clear()
    from workers.app import QUEUES

    for command in (services()["worker"]["command"], procfile()["worker"]):
        args = argv(command)
        assert args[3] == "worker"
        assert set(args[args.index("-Q") + 1].split(",")) == set(QUEUES)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_command_runs_a_real_program(service: str) -> None:
    check_command(argv(services()[service]["command"]))


@pytest.mark.parametrize("process", APP_SERVICES)
def test_procfile_command_runs_a_real_program(process: str) -> None:
    entries = procfile()
    assert set(entries) == set(APP_SERVICES)
    check_command(argv(entries[process]))


def test_procfile_and_compose_run_the_same_programs() -> None:
    for name, command in procfile().items():
        assert argv(command)[:4] == argv(services()[name]["command"])[:4]


def test_compose_variables_are_documented_and_read_by_someone() -> None:
    documented = env_example()
    used = set(INTERPOLATION.findall(COMPOSE.read_text()))
    for name, _default in used:
        assert name in documented, f"{name} is used in docker-compose.yml but not in .env.example"
    for service in services().values():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict)
    for name in APP_SERVICES:
        for variable in services()[name].get("environment") or {}:
            assert variable in SETTINGS_VARS | OTHER_VARS, f"{name} sets {variable}, which nothing reads"


def test_env_example_documents_every_setting_and_nothing_unknown() -> None:
    documented = env_example()
    assert set(documented) >= SETTINGS_VARS, f"undocumented: {sorted(SETTINGS_VARS - set(documented))}"
    assert set(documented) <= SETTINGS_VARS | OTHER_VARS, sorted(set(documented) - SETTINGS_VARS - OTHER_VARS)
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in documented:
        index = next(i for i, ln in enumerate(lines) if re.match(rf"^#?\s*{name}=", ln))
        block = []
        while index > 0 and lines[index - 1].strip():
            index -= 1
            block.append(lines[index])
        assert any(ln.startswith("# ") and "=" not in ln.split()[1] for ln in block), f"{name}: no comment"


def test_env_example_loads_into_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ENV_EXAMPLE, letzai_simulator=True)  # type: ignore[call-arg]
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.database_url.startswith("postgresql://")
    assert settings.s3_endpoint_url == "http://minio:9000"
    password = env_example()["POSTGRES_PASSWORD"]
    assert f":{password}@postgres:" in settings.database_url


def test_dockerfile_installs_the_project_with_every_package() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    copied = {line.split()[1] for line in text.splitlines() if line.startswith("COPY ")}
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert re.search(r'pip install (--no-deps )?"\.\[postgres\]"', text)
    assert "USER " in text


@pytest.mark.parametrize("command", [["worker"], ["beat"], ["flower", "--port", "5566"]])
def test_cli_wrappers_exec_the_same_celery_programs(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from workers import cli, cli_processes

    execs: list[list[str]] = []
    monkeypatch.setattr(cli_processes.os, "execvp", lambda _file, args: execs.append(list(args)))
    args = cli.build_parser().parse_args(command)
    args.func(args)
    assert execs and execs[0][:3] == [sys.executable, "-m", "celery"]
    check_command(execs[0][2:])
    assert execs[0][5] == command[0]
