"""One lab instance: etcd, the control plane, kwok, Prometheus and the metrics exporter on 127.0.0.1.

The instance's state (ports, PIDs, commands, paths) lives in `<cache>/instances/<name>.json`; its data,
logs and credentials live in a temporary directory that `down` removes. Several instances run side by side.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inquest.lab import build, kwok, paths, pki, procs
from inquest.lab.errors import LabError

ADMIN_USER = "inquest-lab-admin"
OPERATOR_USER = "inquest-operator"
NOBODY_USER = "inquest-lab-nobody"
NODE_NAMES = ("node-a", "node-b", "node-c")
# The lab's own machinery; kept out of the audit log so it holds what people and the operator did.
LAB_SYSTEM_USERS = ("system:kube-controller-manager", "system:kube-scheduler", "inquest-lab-kwok", "system:apiserver")
HISTORY_SECONDS = 2 * 3600
READY_TIMEOUT_SECONDS = 60.0


def progress(message: str) -> None:
    print(f"[inquest lab] {message}", file=sys.stderr, flush=True)


@dataclass
class Lab:
    """A running lab instance, as recorded in its state file."""

    name: str
    data_dir: Path
    ports: dict[str, int]
    tokens: dict[str, str]
    processes: dict[str, procs.ManagedProcess] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return state_file(self.name)

    @property
    def ca_cert(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['kube-apiserver']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['exporter']}"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "logs" / "audit.log"

    @property
    def series_file(self) -> Path:
        return self.data_dir / "exporter" / "series.json"

    def kubeconfig(self, identity: str = "admin") -> Path:
        return self.data_dir / f"kubeconfig-{identity}"

    @property
    def kubeconfig_admin(self) -> Path:
        return self.kubeconfig("admin")

    @property
    def kubeconfig_operator(self) -> Path:
        return self.kubeconfig("operator")

    def save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "name": self.name,
            "dataDir": str(self.data_dir),
            "ports": self.ports,
            "tokens": self.tokens,
            "processes": {name: process.to_dict() for name, process in self.processes.items()},
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=2))
        os.chmod(temporary, 0o600)
        temporary.replace(self.state_file)

    @classmethod
    def load(cls, name: str) -> Lab | None:
        path = state_file(name)
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        return cls(
            name=document["name"],
            data_dir=Path(document["dataDir"]),
            ports=document["ports"],
            tokens=document["tokens"],
            processes={key: procs.ManagedProcess.from_dict(value) for key, value in document["processes"].items()},
        )

    def alive(self, component: str) -> bool:
        process = self.processes.get(component)
        return process is not None and procs.is_alive(process, str(self.data_dir))

    def stop_component(self, component: str) -> None:
        """Stops one component (e.g. Prometheus, to test how inquest copes); start_component brings it back."""
        process = self.processes.get(component)
        if process is not None:
            procs.stop(process, str(self.data_dir))

    def start_component(self, component: str) -> None:
        process = self.processes[component]
        self.processes[component] = procs.start(component, process.command, process.log_path)
        self.save()
        self.wait_ready(component)

    def wait_ready(self, component: str, timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        process = self.processes[component]
        check = self.readiness_checks()[component]
        procs.wait_until(process, str(self.data_dir), check, timeout_seconds, "ready")

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        admin_token = self.tokens["admin"]
        return {
            "etcd": lambda: procs.http_ok(f"http://127.0.0.1:{self.ports['etcd']}/health", expect=b'"true"'),
            "kube-apiserver": lambda: procs.http_ok(f"{self.apiserver_url}/readyz", admin_token, self.ca_cert),
            "kube-controller-manager": lambda: procs.http_ok(
                f"https://127.0.0.1:{self.ports['kube-controller-manager']}/healthz"
            ),
            "kube-scheduler": lambda: procs.http_ok(f"https://127.0.0.1:{self.ports['kube-scheduler']}/healthz"),
            "kwok": lambda: procs.http_ok(kwok.healthz_url(f"127.0.0.1:{self.ports['kwok']}")),
            "prometheus": lambda: procs.http_ok(f"{self.prometheus_url}/-/ready"),
            "exporter": lambda: procs.http_ok(f"{self.exporter_url}/healthz"),
            "operator": lambda: procs.http_ok(f"http://127.0.0.1:{self.ports.get('operator-health', 0)}/healthz"),
        }

    def add_series(self, specs: list[Any], history_seconds: float = 0) -> None:
        """Serves more series from the exporter. With history, they are backfilled too: Prometheus loads blocks
        only at start-up, so it is stopped, given the blocks, and started again (a couple of seconds)."""
        from inquest.lab import exporter, openmetrics, prometheus_config

        current = exporter.read_series_file(self.series_file)
        exporter.write_series_file(self.series_file, [*current, *specs])
        if history_seconds <= 0:
            return
        self.stop_component("prometheus")
        now = time.time()
        openmetrics.backfill(
            specs,
            now - history_seconds,
            now,
            5,
            self.data_dir / "prometheus" / "data",
            promtool=str(build.locate("promtool")),
            job=prometheus_config.LAB_JOB,
            instance=prometheus_config.LAB_INSTANCE,
        )
        self.start_component("prometheus")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A minimal admin REST call for bootstrapping, before any client library is involved."""
        import ssl

        request = urllib.request.Request(
            f"{self.apiserver_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.tokens['admin']}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result

    def env_lines(self, identity: str = "admin") -> list[str]:
        lines = [
            f"export KUBECONFIG={self.kubeconfig(identity)}",
            f"export PROMETHEUS_URL={self.prometheus_url}",
            f"export INQUEST_LAB_AUDIT_LOG={self.audit_log}",
            f"export INQUEST_LAB_NAME={self.name}",
        ]
        if identity == "operator":
            lines.append(f"export INQUEST_LAB_USER={OPERATOR_USER}")
        return lines


def state_file(name: str) -> Path:
    return paths.instances_dir() / f"{name}.json"


def _write_kubeconfig(path: Path, server: str, ca_cert: Path, user: str, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "inquest-lab",
        "clusters": [{"name": "inquest-lab", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "inquest-lab", "context": {"cluster": "inquest-lab", "user": user}}],
    }
    path.write_text(json.dumps(config, indent=2))
    os.chmod(path, 0o600)


def _audit_policy() -> str:
    users = ", ".join(json.dumps(user) for user in LAB_SYSTEM_USERS)
    return (
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
        f"  - level: None\n    users: [{users}]\n"
        # The operator's requests on Secrets with their responses, to show what it was sent (metadata only).
        f"  - level: RequestResponse\n    users: [{json.dumps(OPERATOR_USER)}]\n"
        '    resources: [{group: "", resources: [secrets]}]\n'
        "  - level: Metadata\n"
    )


def _choose_ports(port_base: int | None) -> dict[str, int]:
    names = (
        "etcd",
        "etcd-peer",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "prometheus",
        "exporter",
    )
    if port_base is None:
        return {name: procs.free_port() for name in names}
    return {name: port_base + offset for offset, name in enumerate(names)}


def _prepare(name: str, port_base: int | None) -> Lab:
    data_dir = Path(tempfile.mkdtemp(prefix=f"inquest-lab-{name}-"))
    tokens = {
        identity: secrets.token_hex(16)
        for identity in ("admin", "operator", "nobody", "controller-manager", "scheduler", "kwok")
    }
    lab = Lab(name=name, data_dir=data_dir, ports=_choose_ports(port_base), tokens=tokens)
    for directory in ("logs", "etcd", "certs", "prometheus", "exporter"):
        (data_dir / directory).mkdir()
    pki.create(data_dir / "pki")
    identities = {
        "admin": (ADMIN_USER, "system:masters"),
        "operator": (OPERATOR_USER, ""),
        # Never granted anything: what a restricted identity sees, whatever RBAC the operator has been given.
        "nobody": (NOBODY_USER, ""),
        # Lab simplification: the controllers run as cluster admins rather than with per-controller credentials.
        "controller-manager": ("system:kube-controller-manager", "system:masters"),
        "scheduler": ("system:kube-scheduler", "system:masters"),
        "kwok": ("inquest-lab-kwok", "system:masters"),
    }
    rows = [
        f"{tokens[identity]},{user},{user}" + (f',"{group}"' if group else "")
        for identity, (user, group) in identities.items()
    ]
    (data_dir / "tokens.csv").write_text("\n".join(rows) + "\n")
    os.chmod(data_dir / "tokens.csv", 0o600)
    for identity, (user, _) in identities.items():
        _write_kubeconfig(lab.kubeconfig(identity), lab.apiserver_url, lab.ca_cert, user, tokens[identity])
    (data_dir / "audit-policy.yaml").write_text(_audit_policy())
    return lab


def _commands(lab: Lab) -> dict[str, list[str]]:
    data, ports = lab.data_dir, lab.ports
    pki_dir = data / "pki"
    secure_serving = ["--bind-address=127.0.0.1", "--authentication-skip-lookup=true"]
    return {
        "etcd": [
            str(build.locate("etcd")),
            "--name=lab",
            f"--data-dir={data / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-cluster=lab=http://127.0.0.1:{ports['etcd-peer']}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
            "--quota-backend-bytes=8589934592",
        ],
        "kube-apiserver": [
            str(build.locate("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--secure-port={ports['kube-apiserver']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={data / 'certs'}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            f"--token-auth-file={data / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/16",  # room for the scale benchmark's 1,000 Services
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            f"--audit-policy-file={data / 'audit-policy.yaml'}",
            f"--audit-log-path={lab.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
            # EndpointSlices may not hold loopback addresses, so the `kubernetes` Service has no endpoints here.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ],
        "kube-controller-manager": [
            str(build.locate("kube-controller-manager")),
            f"--kubeconfig={lab.kubeconfig('controller-manager')}",
            f"--authentication-kubeconfig={lab.kubeconfig('controller-manager')}",
            f"--authorization-kubeconfig={lab.kubeconfig('controller-manager')}",
            "--leader-elect=false",
            f"--secure-port={ports['kube-controller-manager']}",
            *secure_serving,
            f"--root-ca-file={pki_dir / 'ca.crt'}",
            f"--service-account-private-key-file={pki_dir / 'sa.key'}",
            f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
            f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
            "--use-service-account-credentials=false",
            "--profiling=false",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        "kube-scheduler": [
            str(build.locate("kube-scheduler")),
            f"--kubeconfig={lab.kubeconfig('scheduler')}",
            f"--authentication-kubeconfig={lab.kubeconfig('scheduler')}",
            f"--authorization-kubeconfig={lab.kubeconfig('scheduler')}",
            "--leader-elect=false",
            f"--secure-port={ports['kube-scheduler']}",
            *secure_serving,
            "--profiling=false",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        "kwok": kwok.kwok_command(
            build.locate("kwok"), lab.kubeconfig("kwok"), f"127.0.0.1:{ports['kwok']}", kwok.STAGES_DIR
        ),
        "prometheus": [
            str(build.locate("prometheus")),
            f"--config.file={data / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={data / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            "--storage.tsdb.retention.time=15d",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        "exporter": [
            sys.executable,
            "-m",
            "inquest.lab.exporter",
            f"--port={ports['exporter']}",
            f"--series-file={lab.series_file}",
        ],
    }


def _check_ports(lab: Lab) -> None:
    for component, port in lab.ports.items():
        if not procs.port_is_free(port):
            raise LabError(component.removesuffix("-peer"), f"port 127.0.0.1:{port} is already in use")


def _start(lab: Lab, commands: dict[str, list[str]], component: str) -> None:
    lab.processes[component] = procs.start(component, commands[component], lab.data_dir / "logs" / f"{component}.log")
    lab.save()


def _start_and_wait(lab: Lab, commands: dict[str, list[str]], components: tuple[str, ...]) -> None:
    for component in components:
        _start(lab, commands, component)
    for component in components:
        lab.wait_ready(component)


def _prepare_metrics(lab: Lab, now: float) -> None:
    from inquest.lab import exporter, openmetrics, prometheus_config, shapes

    (lab.data_dir / "prometheus" / "prometheus.yml").write_text(
        prometheus_config.prometheus_config(f"127.0.0.1:{lab.ports['exporter']}")
    )
    baseline = shapes.SeriesSpec.model_validate(
        {
            "name": "inquest_lab_heartbeats_total",
            "type": "counter",
            "labels": {"lab": lab.name},
            "points": [{"at": -HISTORY_SECONDS, "value": 1.0}],
            "reference_time": now,
        }
    )
    exporter.write_series_file(lab.series_file, [baseline])
    openmetrics.backfill(
        [baseline],
        now - HISTORY_SECONDS,
        now,
        5,
        lab.data_dir / "prometheus" / "data",
        promtool=str(build.locate("promtool")),
        job=prometheus_config.LAB_JOB,
        instance=prometheus_config.LAB_INSTANCE,
    )


def _bootstrap_cluster(lab: Lab) -> None:
    for node_name in NODE_NAMES:
        add_node(lab, node_name)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        nodes = lab.api("GET", "/api/v1/nodes")["items"]
        ready = [
            node
            for node in nodes
            if any(
                condition["type"] == "Ready" and condition["status"] == "True"
                for condition in node.get("status", {}).get("conditions", [])
            )
        ]
        has_default_account = exists(lab, "/api/v1/namespaces/default/serviceaccounts/default")
        if len(ready) >= len(NODE_NAMES) and has_default_account:
            return
        time.sleep(0.2)
    raise LabError(
        "kwok",
        f"nodes or the default ServiceAccount not ready within {READY_TIMEOUT_SECONDS:.0f}s",
        procs.log_tail(lab.processes["kwok"].log_path),
    )


def wait_for_default_service_account(lab: Lab, namespace: str, timeout_seconds: float = 30) -> None:
    """Pods are refused until kube-controller-manager has made the namespace's default ServiceAccount."""
    deadline = time.monotonic() + timeout_seconds
    while not exists(lab, f"/api/v1/namespaces/{namespace}/serviceaccounts/default"):
        if time.monotonic() > deadline:
            raise LabError(
                "kube-controller-manager",
                f"no default ServiceAccount in namespace {namespace} after {timeout_seconds:.0f}s",
                procs.log_tail(lab.processes["kube-controller-manager"].log_path),
            )
        time.sleep(0.1)


def add_node(lab: Lab, name: str, cpu: str = "64", memory: str = "256Gi", pods: str = "1000") -> None:
    lab.api("POST", "/api/v1/nodes", kwok.node_manifest(name, cpu=cpu, memory=memory, pods=pods))


def exists(lab: Lab, path: str) -> bool:
    try:
        lab.api("GET", path)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    return True


@contextmanager
def _step(name: str, index: int, total: int, started: float) -> Iterator[None]:
    progress(f"[{index}/{total}] {name} ...")
    yield
    progress(f"[{index}/{total}] {name}: ok ({time.monotonic() - started:.1f}s since start)")


def up(name: str = "default", port_base: int | None = None) -> Lab:
    existing = Lab.load(name)
    if existing is not None:
        if all(existing.alive(component) for component in existing.processes):
            progress(f"lab {name!r} is already running")
            return existing
        progress(f"lab {name!r} is partly running; cleaning it up before starting again")
        down(name)
    started = time.monotonic()
    lab = _prepare(name, port_base)
    try:
        _check_ports(lab)
        commands = _commands(lab)
        total = 5
        with _step("etcd", 1, total, started):
            _start_and_wait(lab, commands, ("etcd",))
        with ThreadPoolExecutor(max_workers=1) as metrics_pool:
            metrics_ready = metrics_pool.submit(_start_metrics, lab, commands, time.time())
            with _step("kube-apiserver", 2, total, started):
                _start_and_wait(lab, commands, ("kube-apiserver",))
            with _step("kube-controller-manager, kube-scheduler, kwok", 3, total, started):
                _start_and_wait(lab, commands, ("kube-controller-manager", "kube-scheduler", "kwok"))
            with _step(f"nodes {', '.join(NODE_NAMES)} Ready", 4, total, started):
                _bootstrap_cluster(lab)
            with _step("prometheus and the metrics exporter", 5, total, started):
                metrics_ready.result()
    except BaseException:
        if lab.processes:
            progress(f"start-up failed; stopping what was started (logs kept in {lab.data_dir / 'logs'})")
            _stop_all(lab)
        else:
            shutil.rmtree(lab.data_dir, ignore_errors=True)
        state_file(name).unlink(missing_ok=True)
        raise
    progress(
        f"lab {name!r} is up in {time.monotonic() - started:.1f}s; "
        f'run: eval "$(python -m inquest.lab env --name {name})"'
    )
    return lab


def _start_metrics(lab: Lab, commands: dict[str, list[str]], now: float) -> None:
    _prepare_metrics(lab, now)
    _start_and_wait(lab, commands, ("exporter", "prometheus"))


def _stop_all(lab: Lab) -> None:
    for component in reversed(list(lab.processes)):
        procs.stop(lab.processes[component], str(lab.data_dir))


def down(name: str = "default", keep_data: bool = False) -> bool:
    lab = Lab.load(name)
    if lab is None:
        progress(f"lab {name!r} is not running")
        return False
    _stop_all(lab)
    if not keep_data:
        shutil.rmtree(lab.data_dir, ignore_errors=True)
    state_file(name).unlink(missing_ok=True)
    progress(f"lab {name!r} stopped")
    return True


def status(name: str = "default") -> list[str]:
    lab = Lab.load(name)
    if lab is None:
        return [f"lab {name!r}: not running"]
    checks = lab.readiness_checks()
    lines = [f"lab {name!r}: data in {lab.data_dir}"]
    for component, process in lab.processes.items():
        alive = lab.alive(component)
        ready = alive and checks[component]()
        state = "ready" if ready else ("running, not ready" if alive else "stopped")
        lines.append(f"  {component:<24} pid {process.pid:<8} port {lab.ports.get(component, '-')!s:<6} {state}")
    return lines


def instances() -> list[str]:
    directory = paths.instances_dir()
    return sorted(path.stem for path in directory.glob("*.json")) if directory.exists() else []
