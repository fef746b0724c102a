"""One detector per root-cause category; each reads an EvidenceContext and returns Candidates."""

from __future__ import annotations

from collections.abc import Callable

from inquest.categories import Category
from inquest.engine.candidates import Candidate
from inquest.engine.context import EvidenceContext
from inquest.engine.detectors.capacity import detect_capacity
from inquest.engine.detectors.config import detect_config_change
from inquest.engine.detectors.metrics import detect_application_error, detect_cpu_throttling, detect_network_degradation
from inquest.engine.detectors.network_policy import detect_network_policy
from inquest.engine.detectors.node import detect_node_failure
from inquest.engine.detectors.pod_failures import (
    detect_crash_loop,
    detect_image_pull,
    detect_oom_killed,
    detect_probe_failure,
)
from inquest.engine.detectors.quota import detect_quota
from inquest.engine.detectors.rollout import detect_bad_rollout
from inquest.engine.detectors.scale import detect_scaled_to_zero
from inquest.engine.detectors.scheduling import detect_scheduling, detect_storage
from inquest.engine.detectors.service import detect_service_misconfig

Detector = Callable[[EvidenceContext], list[Candidate]]

DETECTORS: dict[Category, Detector] = {
    Category.IMAGE_PULL: detect_image_pull,
    Category.CRASH_LOOP: detect_crash_loop,
    Category.OOM_KILLED: detect_oom_killed,
    Category.CPU_THROTTLING: detect_cpu_throttling,
    Category.PROBE_FAILURE: detect_probe_failure,
    Category.BAD_ROLLOUT: detect_bad_rollout,
    Category.CONFIG_CHANGE: detect_config_change,
    Category.SERVICE_MISCONFIG: detect_service_misconfig,
    Category.NETWORK_POLICY: detect_network_policy,
    Category.NETWORK_DEGRADATION: detect_network_degradation,
    Category.SCHEDULING: detect_scheduling,
    Category.QUOTA: detect_quota,
    Category.CAPACITY: detect_capacity,
    Category.SCALED_TO_ZERO: detect_scaled_to_zero,
    Category.STORAGE: detect_storage,
    Category.NODE_FAILURE: detect_node_failure,
    Category.APPLICATION_ERROR: detect_application_error,
}


def run_detectors(ctx: EvidenceContext) -> list[Candidate]:
    return [candidate for detector in DETECTORS.values() for candidate in detector(ctx)]


__all__ = ["DETECTORS", "Detector", "run_detectors"]
