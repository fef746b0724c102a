"""The plugin's only contact with Kubernetes: Investigations, through the official client, as the kubeconfig user.

Every failure becomes a PluginError with one line a person can act on: no kubeconfig, API server unreachable,
credentials refused, forbidden, the Investigation API not installed, no such Investigation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from inquest.api import models

REQUEST_TIMEOUT: Final = (5.0, 30.0)  # connect, read
ResultT = TypeVar("ResultT")


class PluginError(Exception):
    """A failure to report as `error: <message>` and exit code 1."""


@dataclass(frozen=True)
class Connection:
    server: str
    namespace: str
    user: str


class InvestigationsApi:
    """Investigations in the cluster the kubeconfig (KUBECONFIG, --kubeconfig, --context) points at."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config

        try:
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            chosen = active
            if context is not None:
                chosen = next((item for item in contexts if item.get("name") == context), None)
                if chosen is None:
                    raise PluginError(f'context "{context}" does not exist in the kubeconfig')
            self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        except config.ConfigException as error:
            raise PluginError(f"no usable kubeconfig: {_one_line(str(error))}") from error
        except OSError as error:
            raise PluginError(f"cannot read the kubeconfig: {_one_line(str(error))}") from error
        details = (chosen or {}).get("context") or {}
        self.connection = Connection(
            server=str(self._api_client.configuration.host),
            namespace=str(details.get("namespace") or "default"),
            user=str(details.get("user") or ""),
        )
        self._custom = client.CustomObjectsApi(self._api_client)

    def close(self) -> None:
        self._api_client.close()

    def _call(self, call: Callable[[], ResultT], namespace: str | None = None, name: str | None = None) -> ResultT:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call()
        except ApiException as error:
            raise api_error(error, namespace, name) from error
        except (HTTPError, OSError) as error:
            raise PluginError(
                f"cannot reach the Kubernetes API server at {self.connection.server}: {_reason(error)}"
            ) from error

    def create(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        created = self._call(
            lambda: self._custom.create_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, dict(body), _request_timeout=REQUEST_TIMEOUT
            ),
            namespace,
        )
        return cast(dict[str, Any], created)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        found = self._call(
            lambda: self._custom.get_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, _request_timeout=REQUEST_TIMEOUT
            ),
            namespace,
            name,
        )
        return cast(dict[str, Any], found)

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            found = self._call(
                lambda: self._custom.list_cluster_custom_object(
                    models.GROUP, models.VERSION, models.PLURAL, _request_timeout=REQUEST_TIMEOUT
                )
            )
        else:
            found = self._call(
                lambda: self._custom.list_namespaced_custom_object(
                    models.GROUP, models.VERSION, namespace, models.PLURAL, _request_timeout=REQUEST_TIMEOUT
                ),
                namespace,
            )
        return [item for item in cast(dict[str, Any], found).get("items") or [] if isinstance(item, dict)]

    def patch_spec(
        self, namespace: str, name: str, patch: Mapping[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """A merge patch of the spec; with resource_version the API server refuses it (409) if the object moved on."""
        body: dict[str, Any] = {"spec": dict(patch)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        patched = self._call(
            lambda: self._custom.patch_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, body, _request_timeout=REQUEST_TIMEOUT
            ),
            namespace,
            name,
        )
        return cast(dict[str, Any], patched)


class Conflict(PluginError):
    """The object changed between our read and our write (409)."""


def api_error(error: Any, namespace: str | None = None, name: str | None = None) -> PluginError:
    """One line for an API error; pure, so it is unit-tested on plain values."""
    status = getattr(error, "status", None)
    reply: dict[str, Any] = {}
    try:
        parsed = json.loads(getattr(error, "body", None) or "{}")
        if isinstance(parsed, dict):
            reply = parsed
    except ValueError:
        pass
    message = _one_line(str(reply.get("message") or getattr(error, "reason", "") or "no message"))
    found_details = reply.get("details")
    details: dict[str, Any] = found_details if isinstance(found_details, dict) else {}
    is_status = reply.get("kind") == "Status"
    if status == 401:
        return PluginError("unauthorized: the API server did not accept the kubeconfig's credentials")
    if status == 403:
        return PluginError(f"forbidden: {message}")
    if status == 404 and is_status and details.get("kind") == "namespaces":
        return PluginError(f'namespace "{details.get("name") or namespace}" not found')
    if status == 404 and is_status and details.get("kind") == models.PLURAL:
        return PluginError(f'investigation "{details.get("name") or name}" not found in namespace "{namespace}"')
    if status == 404:
        return PluginError(
            f"the Investigation API ({models.CRD_NAME}) is not installed in this cluster; "
            "install it with: kubectl apply -f crds/investigations.inquest.dev.yaml"
        )
    if status == 409:
        return Conflict(f"conflict: {message}")
    if status in (400, 422):
        return PluginError(f"the API server refused it: {message}")
    return PluginError(f"the API server answered {status}: {message}")


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    text = str(reason if isinstance(reason, BaseException) else error)
    for hint in ("Connection refused", "timed out", "Name or service not known", "certificate verify failed"):
        if hint.lower() in text.lower():
            return hint.lower()
    return _one_line(text)[:200]


def _one_line(text: str) -> str:
    return " ".join(text.split())
