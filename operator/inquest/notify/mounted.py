"""Notifier credentials from Secrets the kubelet mounts as files: `<dir>/<name>/<key>`, never read through the API.

The Helm chart mounts every Secret that a notifier's `secretRef` names (and those listed in `mountSecrets`) read-only
under one directory and passes it as `--secrets-dir`. A pod can mount only Secrets of its own namespace, so with
`--secrets-namespace` a `secretRef` to any other namespace is refused rather than answered from a same-named Secret.

The file is read at every call (the kubelet swaps a mounted Secret's files atomically when the Secret changes), so
a rotated URL or key is used as soon as the kubelet has synced it and the notifier's own cache
(`delivery.secretCacheSeconds`) has expired. Values are never logged and never part of an error message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from inquest.notify.routes import NotifyConfig, SecretRef, WebhookNotifier

# How a reader of the error learns to fix it; the chart mounts what config.notifications names.
MOUNT_HINT: Final = (
    "mount that Secret there (Helm: name it in config.notifications or list it in mountSecrets; elsewhere a "
    "read-only secret volume at {directory}/{name}), or run with --notify-secrets-from-api to read it through the "
    "API (needs get on it)"
)


class SecretNotMounted(LookupError):
    """The Secret of a `secretRef` is not mounted under the secrets directory (or lives in another namespace).

    `status` is 404 so that callers that understand API errors (notify.hook) treat it as a Secret that does not
    exist: a permanent failure, not one worth retrying."""

    status: Final = 404


@dataclass(frozen=True)
class UnmountedRef:
    """A `secretRef` of the notification config that cannot be read from the secrets directory."""

    field: str  # where in the notification config, e.g. notifiers[0].secretRef
    notifier: str
    message: str

    def __str__(self) -> str:
        return f"{self.field} (notifier {self.notifier}): {self.message}"


class MountedSecrets:
    """A notify.hook.SecretReader over mounted Secret files."""

    def __init__(self, directory: Path, namespace: str | None = None) -> None:
        self.directory = directory
        self.namespace = namespace  # the pod's; None (local runs) accepts any

    def path(self, ref: SecretRef) -> Path:
        return self.directory / ref.name / ref.key

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """The value, surrounding whitespace stripped (the newline `--from-file` leaves), as KubeWriter's.

        Raises KeyError when the Secret is mounted without that key, SecretNotMounted when it is not mounted."""
        ref = SecretRef(namespace=namespace, name=name, key=key)
        problem = self._problem(ref)
        if problem is not None:
            raise SecretNotMounted(problem)
        return await asyncio.to_thread(self._read, ref)

    def unmounted(self, config: NotifyConfig) -> list[UnmountedRef]:
        """Every `secretRef` of the config that cannot be read now, naming its notifier and how to mount it."""
        found: list[UnmountedRef] = []
        for index, notifier in enumerate(config.notifiers):
            refs = [(f"notifiers[{index}].secretRef", notifier.secret_ref)]
            if isinstance(notifier, WebhookNotifier):
                refs += [
                    (f"notifiers[{index}].headers[{position}].secretRef", header.secret_ref)
                    for position, header in enumerate(notifier.headers)
                ]
            for field, ref in refs:
                problem = self._problem(ref) or self._missing_file(ref)
                if problem is not None:
                    found.append(UnmountedRef(field, notifier.name, problem))
        return found

    def _problem(self, ref: SecretRef) -> str | None:
        if ref.key in (".", "..") or ref.key.startswith(".."):
            return f"{ref}: {ref.key!r} is not a Secret key"  # `..data` and friends are the kubelet's own
        if self.namespace is not None and ref.namespace != self.namespace:
            return (
                f"{ref} is in namespace {ref.namespace}, but a pod mounts only Secrets of its own namespace "
                f"({self.namespace}): keep the Secret in {self.namespace}, or run with --notify-secrets-from-api"
            )
        if not (self.directory / ref.name).is_dir():
            hint = MOUNT_HINT.format(directory=self.directory, name=ref.name)
            return f"{ref} is not mounted at {self.directory / ref.name}: {hint}"
        return None

    def _missing_file(self, ref: SecretRef) -> str | None:
        path = self.path(ref)
        if path.is_file():
            return None
        return f"{ref}: the Secret is mounted at {path.parent} but has no key {ref.key}"

    def _read(self, ref: SecretRef) -> str:
        try:
            return self.path(ref).read_text().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(f"{ref}: no such key in the mounted Secret") from None
