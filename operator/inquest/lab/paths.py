"""Where the lab keeps its binaries, logs and running instances (all outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

KUBERNETES_VERSION = "v1.32.9"  # the newest 1.32 patch whose staging twins the proxy serves in full
ETCD_VERSION = "v3.5.24"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.0"


def cache_root() -> Path:
    configured = os.environ.get("INQUEST_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "inquest"
    return root.expanduser().resolve()


def bin_dir() -> Path:
    return cache_root() / "bin"


def build_log_dir() -> Path:
    return cache_root() / "build-logs"


def instances_dir() -> Path:
    return cache_root() / "instances"


def build_times_file() -> Path:
    return cache_root() / "build-times.json"
