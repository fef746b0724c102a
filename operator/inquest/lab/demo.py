"""`make demo`: the lab, the shop application (web -> gateway -> checkout -> payments / cart -> redis), the
operator running as its own restricted identity, a bad payments release, and an Investigation that explains it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from inquest.lab import build, cluster, operator
from inquest.lab.errors import LabError
from inquest.lab.waiting import wait_for

SHOP_MANIFEST = Path(__file__).parent / "manifests" / "shop.yaml"
SHOP_NAMESPACE = "shop"
BAD_RELEASE = {
    "spec": {
        "template": {
            "metadata": {"annotations": {"sim.inquest.dev/container": "crashloop", "sim.inquest.dev/interval": "2s"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/payments:1.9.0"}]},
        }
    }
}
INVESTIGATION = """\
apiVersion: inquest.dev/v1alpha1
kind: Investigation
metadata:
  name: checkout-failing
  namespace: shop
spec:
  target: {kind: Deployment, name: checkout}
  question: "why is checkout failing?"
  lookback: 30m
"""


def kubectl(lab: cluster.Lab, *arguments: str, input_text: str | None = None) -> str:
    command = [str(build.locate("kubectl")), f"--kubeconfig={lab.kubeconfig_admin}", *arguments]
    completed = subprocess.run(command, input=input_text, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LabError("kubectl", f"failed: {' '.join(command)}", completed.stderr)
    return completed.stdout


def deploy_shop(lab: cluster.Lab, namespace: str = SHOP_NAMESPACE) -> None:
    if not cluster.exists(lab, f"/api/v1/namespaces/{namespace}"):
        kubectl(lab, "create", "namespace", namespace)
    cluster.wait_for_default_service_account(lab, namespace)
    kubectl(lab, "apply", "-n", namespace, "-f", str(SHOP_MANIFEST))
    kubectl(lab, "wait", "-n", namespace, "--for=condition=Available", "deployment", "--all", "--timeout=60s")


def show(lab: cluster.Lab, *arguments: str) -> None:
    print(f"$ kubectl {' '.join(arguments)}")
    print(kubectl(lab, *arguments))


def restarts(lab: cluster.Lab) -> int:
    pods = json.loads(kubectl(lab, "get", "pods", "-n", SHOP_NAMESPACE, "-l", "app=payments", "-o", "json"))
    return max(
        (
            status.get("restartCount", 0)
            for pod in pods["items"]
            for status in pod["status"].get("containerStatuses", [])
        ),
        default=0,
    )


ALERT_NAME = "CheckoutHighErrorRate"


class SlackReceiver:
    """A stand-in for Slack's incoming webhook on 127.0.0.1: it keeps what inquest posts, to show it."""

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[dict[str, object]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/slack"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def text(self) -> str:
        """The text of every block of every message, as a Slack client would show it."""
        lines: list[str] = []
        for message in self.received:
            blocks = message.get("blocks")
            for block in blocks if isinstance(blocks, list) else []:
                fields = block.get("fields") if isinstance(block, dict) else None
                for part in [block.get("text") if isinstance(block, dict) else None, *(fields or [])]:
                    if isinstance(part, dict) and part.get("text"):
                        lines.append(str(part["text"]))
        return "\n".join(lines)

    def close(self) -> None:
        self._server.shutdown()


def wiring(lab: cluster.Lab, receiver: SlackReceiver) -> tuple[int, Path, Path, Path]:
    """The intake's port and token, a notifier config, and the directory its Slack URL is mounted in, as the chart
    mounts a Secret (DIR/NAME/KEY): the operator reads no Secret through the API."""
    from inquest.lab import procs

    token = lab.data_dir / "intake-token"
    token.write_text("demo-intake-token\n")
    config_text = (
        "clusterName: inquest-lab\n"
        "notifiers:\n"
        "  - name: oncall-slack\n"
        "    type: Slack\n"
        f"    secretRef: {{namespace: {SHOP_NAMESPACE}, name: inquest-notifiers, key: slack-webhook-url}}\n"
        "routes:\n"
        f"  - notifiers: [oncall-slack]\n    namespaces: [{SHOP_NAMESPACE}]\n"
    )
    notify = lab.data_dir / "notify.yaml"
    notify.write_text(config_text)
    secrets_dir = lab.data_dir / "secrets"
    (secrets_dir / "inquest-notifiers").mkdir(parents=True, exist_ok=True)
    (secrets_dir / "inquest-notifiers" / "slack-webhook-url").write_text(receiver.url)
    return procs.free_port(), token, notify, secrets_dir


def post_alert(port: int, token: Path) -> str:
    """Posts a firing alert group as Alertmanager would; returns the name of the Investigation it opened."""
    import urllib.request

    alert = {
        "status": "firing",
        "labels": {"alertname": ALERT_NAME, "namespace": SHOP_NAMESPACE, "service": "checkout", "severity": "page"},
        "annotations": {"summary": "checkout is returning 5xx to 12% of requests"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fingerprint": "c0ffee0ddba11",
    }
    payload = {
        "version": "4", "groupKey": f'{{}}:{{alertname="{ALERT_NAME}"}}', "status": "firing", "receiver": "inquest",
        "groupLabels": {"alertname": ALERT_NAME, "namespace": SHOP_NAMESPACE}, "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"], "alerts": [alert],
    }  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alertmanager",
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {token.read_text().strip()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
        print(f"$ curl -X POST http://127.0.0.1:{port}/alertmanager ...  -> HTTP {response.status}")
        print(body)
    return str(json.loads(body)["investigation"]).split("/", 1)[1]


def answered(lab: cluster.Lab, name: str, generation: int) -> None:
    kubectl(
        lab, "wait", f"investigation/{name}", "-n", SHOP_NAMESPACE,
        f"--for=jsonpath={{.status.observedGeneration}}={generation}", "--timeout=30s",
    )  # fmt: skip


def run(name: str) -> None:
    lab = cluster.up(name)
    cluster.progress(f"[demo 1/7] deploying the shop application into namespace {SHOP_NAMESPACE!r}")
    deploy_shop(lab)
    show(lab, "get", "deployments,services", "-n", SHOP_NAMESPACE)
    receiver = SlackReceiver()
    try:
        cluster.progress("[demo 2/7] starting the operator as its own read-only identity, with its Alertmanager")
        cluster.progress("           intake and a Slack notifier (a local receiver stands in for Slack)")
        port, token, notify, secrets_dir = wiring(lab, receiver)
        operator.stop_operator(lab)
        operator.start_operator(
            lab, f"--intake-port={port}", f"--intake-token-file={token}", f"--notify-config={notify}",
            f"--secrets-dir={secrets_dir}",
        )  # fmt: skip
        cluster.progress("[demo 3/7] releasing payments 1.9.0, which crashes on start")
        kubectl(
            lab, "patch", "deployment", "payments", "-n", SHOP_NAMESPACE, "--type=strategic", "-p",
            json.dumps(BAD_RELEASE),
        )  # fmt: skip
        wait_for(lambda: restarts(lab) >= 2, "payments to crash-loop", timeout=60)
        show(lab, "get", "pods", "-n", SHOP_NAMESPACE, "-l", "app=payments")
        cluster.progress(f"[demo 4/7] Alertmanager fires {ALERT_NAME} for Service shop/checkout")
        started = time.monotonic()
        investigation = post_alert(port, token)
        answered(lab, investigation, 1)
        cluster.progress(f"[demo 5/7] answered in {time.monotonic() - started:.2f}s after the alert")
        show(lab, "get", "investigations", "-n", SHOP_NAMESPACE)
        show(lab, "describe", "investigation", investigation, "-n", SHOP_NAMESPACE)
        cluster.progress("[demo 6/7] what the Slack receiver got")
        wait_for(lambda: receiver.received, "the Slack message", timeout=20)
        print(receiver.text())
        print()
        cluster.progress("[demo 7/7] a follow-up: was it the payments release, or node-b?")
        follow_up = {"spec": {"hypotheses": ["the payments 1.9.0 release", "node-b"]}}
        kubectl(
            lab, "patch", "investigation", investigation, "-n", SHOP_NAMESPACE, "--type=merge", "-p",
            json.dumps(follow_up),
        )  # fmt: skip
        answered(lab, investigation, 2)
        show(
            lab, "get", "investigation", investigation, "-n", SHOP_NAMESPACE, "-o",
            "jsonpath={range .status.hypotheses[*]}{.text}: {.verdict} ({.reason}){'\\n'}{end}"
            "{range .status.rounds[*]}round {.generation}: {.answer}{'\\n'}{end}",
        )  # fmt: skip
    finally:
        receiver.close()
    print("The lab and the operator keep running (the Slack receiver stopped with the demo). Use them with:")
    print(f'  eval "$(.venv/bin/python -m inquest.lab env --name {name})"')
    print(f"  kubectl get investigations -n {SHOP_NAMESPACE}")
    print(f"Stop everything with: make lab-down LAB={name}")
