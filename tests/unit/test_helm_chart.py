"""The Helm chart: lints, renders the generated CRD and ClusterRole unchanged, and runs under restricted Pod Security.

The chart keeps copies of crds/ in helm/inquest/files/ (Helm reads only files inside the chart); the first tests
fail when a copy drifts. Rendering needs the lab's helm build (make setup); without it those tests are skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inquest import config, rbac
from inquest.api import crd
from inquest.lab import build, paths

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "inquest"
NAMESPACE = "inquest-system"
RELEASE = "inquest"
# Where the operator reads mounted Secrets, and whose they are: passed in every release.
SECRETS_ARGS = [f"--secrets-dir={config.SECRETS_DIR}", f"--secrets-namespace={NAMESPACE}"]
COPIES = {CHART / "files" / "operator-rbac.yaml": rbac.RBAC_PATH, CHART / "files" / crd.CRD_PATH.name: crd.CRD_PATH}
# The Pod Security Standards' "restricted" profile: the volume types it allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


@pytest.mark.parametrize("copy", list(COPIES), ids=lambda path: path.name)
def test_the_charts_copy_of_a_generated_file_has_not_drifted(copy: Path) -> None:
    source = COPIES[copy]
    assert copy.read_text() == source.read_text(), (
        f"{copy.relative_to(REPO)} drifted from {source.relative_to(REPO)}: "
        f"cp {source.relative_to(REPO)} {copy.relative_to(REPO)}"
    )


def test_the_image_user_is_the_one_the_chart_runs_as() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        f"USER {values['podSecurityContext']['runAsUser']}:{values['podSecurityContext']['runAsGroup']}" in dockerfile
    )
    assert dockerfile.count("FROM python:3.11-slim") == 2


# --- rendering ---------------------------------------------------------------------------------------------------


def helm() -> Path:
    try:
        return build.locate("helm")
    except build.BuildError as error:
        pytest.skip(str(error))


def run_helm(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm()), *arguments], capture_output=True, text=True, timeout=60, check=False)


def render(*settings: str) -> list[dict[str, Any]]:
    # The lab's helm is built without version stamps, so its default Kubernetes version is 1.20: say the lab's.
    result = run_helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--kube-version", paths.KUBERNETES_VERSION.lstrip("v"), *settings,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return render()


def pod_spec(documents: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(documents, "Deployment")["spec"]["template"]["spec"]
    return spec


def test_helm_lint_is_clean() -> None:
    result = run_helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


def test_the_default_release_renders_these_objects(default: list[dict[str, Any]]) -> None:
    assert sorted((d["kind"], d["metadata"]["name"]) for d in default) == [
        ("ClusterRole", RELEASE),
        ("ClusterRoleBinding", RELEASE),
        ("ConfigMap", f"{RELEASE}-config"),
        ("CustomResourceDefinition", "investigations.inquest.dev"),
        ("Deployment", RELEASE),
        ("ServiceAccount", RELEASE),
    ]
    for document in default:
        if document["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert document["metadata"]["namespace"] == NAMESPACE


def test_the_cluster_role_is_exactly_the_generated_one(default: list[dict[str, Any]]) -> None:
    generated = yaml.safe_load(rbac.RBAC_PATH.read_text())
    role = one(default, "ClusterRole")
    assert role["rules"] == generated["rules"]
    assert role["rules"] == rbac.cluster_role()["rules"]
    binding = one(default, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RELEASE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert pod_spec(default)["serviceAccountName"] == one(default, "ServiceAccount")["metadata"]["name"]


def test_watch_secrets_adds_exactly_the_generators_secrets_rule() -> None:
    documents = render("--set", "config.watch.watchSecrets=true")

    def permissions(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
                for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip

    roles = [d for d in documents if d["kind"] == "ClusterRole"]
    assert sorted(role["metadata"]["name"] for role in roles) == [RELEASE, f"{RELEASE}-secrets"]
    rendered = set().union(*(permissions(role["rules"]) for role in roles))
    assert rendered == permissions(rbac.cluster_role(watch_secrets=True)["rules"])
    bindings = {d["roleRef"]["name"] for d in documents if d["kind"] == "ClusterRoleBinding"}
    assert bindings == {RELEASE, f"{RELEASE}-secrets"}


def test_the_crd_is_the_generated_one_kept_on_uninstall(default: list[dict[str, Any]]) -> None:
    generated = yaml.safe_load(crd.CRD_PATH.read_text())
    rendered = one(default, "CustomResourceDefinition")
    assert (rendered["apiVersion"], rendered["kind"]) == (generated["apiVersion"], generated["kind"])
    assert rendered["metadata"]["name"] == generated["metadata"]["name"]
    assert rendered["spec"] == generated["spec"]
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "annotations" not in one(render("--set", "crd.keep=false"), "CustomResourceDefinition")["metadata"]
    assert not [d for d in render("--set", "crd.install=false") if d["kind"] == "CustomResourceDefinition"]


def test_the_deployment_runs_one_operator_with_a_liveness_probe(default: list[dict[str, Any]]) -> None:
    deployment = one(default, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pod_spec(default)["containers"]
    assert container["command"] == ["python", "-m", "inquest", "run"]
    assert container["args"] == ["--liveness=http://0.0.0.0:8080/healthz", *SECRETS_ARGS]
    assert container["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["image"] == "inquest:0.1.0"
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_pod_meets_the_restricted_pod_security_standard(default: list[dict[str, Any]]) -> None:
    spec = pod_spec(render("--set", "intake.enabled=true", "--set", "intake.tokenSecret.name=am",
                           "--set", "intake.tokenSecret.key=token", "--set", "metrics.enabled=true"))  # fmt: skip
    assert spec == pod_spec(default) | {"containers": spec["containers"], "volumes": spec["volumes"]}
    for candidate in (pod_spec(default), spec):
        pod = candidate["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] != 0
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(candidate)
        for container in candidate["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "privileged" not in context
            assert not [port for port in container["ports"] if "hostPort" in port]
            mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
            assert mounts["/tmp"]["name"] == "tmp"
        for volume in candidate["volumes"]:
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
        tmp = next(volume for volume in candidate["volumes"] if volume["name"] == "tmp")
        assert tmp == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


def test_the_config_map_holds_a_valid_config_and_the_operator_is_told_where(default: list[dict[str, Any]]) -> None:
    config_map = one(default, "ConfigMap")
    assert load(config_map) == config.OperatorConfig()
    (container,) = pod_spec(default)["containers"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env == {config.CONFIG_MAP_ENV: f"{NAMESPACE}/{config_map['metadata']['name']}"}
    documents = render(
        "--set", "config.prometheus.url=http://prometheus.monitoring:9090",
        "--set", "config.watch.namespaces={shop,payments}",
        "--set-json", 'config.metricCatalog={"max_points": 500}',
    )  # fmt: skip
    loaded = load(one(documents, "ConfigMap"))
    assert loaded.prometheus.url == "http://prometheus.monitoring:9090"
    assert loaded.watch.namespaces == ("shop", "payments")
    assert loaded.catalog().max_points == 500


def load(config_map: dict[str, Any]) -> config.OperatorConfig:
    return config.load_config(config_map["data"][config.CONFIG_KEY])


NOTIFICATIONS = {
    "notifiers": [
        {"name": "chat", "type": "Slack", "secretRef": {"namespace": NAMESPACE, "name": "slack", "key": "url"}},
        {
            "name": "tickets",
            "type": "Webhook",
            "secretRef": {"namespace": NAMESPACE, "name": "ticketing", "key": "url"},
            "headers": [
                {"name": "Authorization", "secretRef": {"namespace": NAMESPACE, "name": "slack", "key": "auth"}}
            ],
        },
    ],
    "routes": [{"notifiers": ["chat", "tickets"]}],
}


def test_secrets_named_in_the_config_are_mounted_where_the_operator_looks() -> None:
    from inquest.notify.mounted import MountedSecrets
    from inquest.notify.routes import NotifyConfig

    documents = render(
        "--set-json", 'config.prometheus.auth.bearerToken={"secretKeyRef": {"name": "prometheus-token", "key": "t"}}',
        "--set-json", 'config.prometheus.auth.ca={"secretKeyRef": {"name": "prometheus-ca", "key": "ca.crt"}}',
        "--set-json", f"config.notifications={json.dumps(NOTIFICATIONS)}",
        "--set", "mountSecrets={extra-notifiers,prometheus-ca}",
    )  # fmt: skip
    spec = pod_spec(documents)
    (container,) = spec["containers"]
    mounted = {
        mount["mountPath"]: volume["secret"]["secretName"]
        for mount in container["volumeMounts"]
        for volume in spec["volumes"]
        if volume["name"] == mount["name"] and "secret" in volume and mount["readOnly"]
    }
    assert mounted == {
        f"{config.SECRETS_DIR}/{name}": name
        for name in ("extra-notifiers", "prometheus-ca", "prometheus-token", "slack", "ticketing")
    }
    assert container["args"][1:3] == SECRETS_ARGS
    loaded = load(one(documents, "ConfigMap"))
    for ref in loaded.prometheus.auth.credentials().values():
        assert str(ref.path(config.SECRETS_DIR).parent) in mounted
    # Every notifier Secret is where the operator's reader looks for it, in the namespace it holds to.
    reader = MountedSecrets(config.SECRETS_DIR, NAMESPACE)
    routes = NotifyConfig.model_validate(loaded.notifications)
    assert routes.secret_refs()
    for secret_ref in routes.secret_refs():
        assert str(reader.path(secret_ref).parent) in mounted
    # No Secret value ever reaches the rendered chart.
    assert "secretKeyRef" in one(documents, "ConfigMap")["data"][config.CONFIG_KEY]


def test_only_a_change_to_the_watch_settings_restarts_the_pod(default: list[dict[str, Any]]) -> None:
    def checksum(documents: list[dict[str, Any]]) -> str:
        value: str = one(documents, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/watch"]
        return value

    assert re.fullmatch(r"[0-9a-f]{64}", checksum(default))
    assert checksum(render("--set", "config.prometheus.url=http://p:9090")) == checksum(default)
    assert checksum(render("--set", "config.watch.namespaces={shop}")) != checksum(default)


def test_intake_and_metrics_ports_reach_the_service_and_the_service_monitor() -> None:
    documents = render(
        "--set", "intake.enabled=true", "--set", "intake.tokenSecret.name=alertmanager-token",
        "--set", "intake.tokenSecret.key=token", "--set", "metrics.enabled=true",
        "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kube-prometheus-stack",
    )  # fmt: skip
    (container,) = pod_spec(documents)["containers"]
    assert container["args"] == [
        "--liveness=http://0.0.0.0:8080/healthz",
        *SECRETS_ARGS,
        "--intake-port=9095",
        "--intake-max-creations-per-minute=60",
        "--intake-token-file=/var/run/secrets/inquest-intake/token",
        "--metrics-port=9102",
    ]
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {
        "health": 8080,
        "intake": 9095,
        "metrics": 9102,
    }
    service = one(documents, "Service")
    assert [(port["name"], port["port"], port["targetPort"]) for port in service["spec"]["ports"]] == [
        ("intake", 9095, "intake"),
        ("metrics", 9102, "metrics"),
    ]
    deployment = one(documents, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    monitor = one(documents, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert service["metadata"]["labels"] | selector == service["metadata"]["labels"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_no_service_without_a_port_to_serve(default: list[dict[str, Any]]) -> None:
    assert not [d for d in default if d["kind"] in ("Service", "ServiceMonitor")]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (["--set", "serviceMonitor.enabled=true"], "serviceMonitor.enabled needs metrics.enabled and service.enabled"),
        (["--set", "serviceAccount.create=false"], "serviceAccount.name must name an existing ServiceAccount"),
        (
            ["--set-json", 'config.prometheus.auth.bearerToken={"secretKeyRef": {"name": "t"}}'],
            "secretKeyRef t needs a key",
        ),
        (
            [
                "--set-json",
                'config.notifications={"notifiers": [{"secretRef": {"namespace": "shop", "name": "n", "key": "k"}}]}',
            ],
            "secretRef shop/n: the operator reads notifier Secrets from files mounted in its pod",
        ),
    ],
)
def test_a_misconfigured_release_fails_to_render_with_a_reason(settings: list[str], error: str) -> None:
    result = run_helm("template", RELEASE, str(CHART), "--kube-version", "1.32.9", *settings)
    assert result.returncode != 0
    assert error in result.stderr


def test_the_intake_creation_cap_is_a_value() -> None:
    documents = render(
        "--set", "intake.enabled=true", "--set", "intake.tokenSecret.name=am", "--set", "intake.tokenSecret.key=t",
        "--set", "intake.maxCreationsPerMinute=0",
    )  # fmt: skip
    (container,) = pod_spec(documents)["containers"]
    assert "--intake-max-creations-per-minute=0" in container["args"]
