"""The lab Prometheus' configuration: one job scraping the lab exporter under a fixed instance label.

The instance label is pinned so that the backfill, written before the exporter's port is known, carries
the very label set the scrape will attach.
"""

from __future__ import annotations

import yaml

LAB_JOB = "inquest-lab"
LAB_INSTANCE = "lab-exporter"


def prometheus_config(exporter_address: str, scrape_interval_seconds: int = 5) -> str:
    """YAML for `prometheus --config.file`; exporter_address is 'host:port'."""
    host, separator, port = exporter_address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"exporter_address must be 'host:port', got {exporter_address!r}")
    if scrape_interval_seconds < 1:
        raise ValueError(f"scrape_interval_seconds must be >= 1, got {scrape_interval_seconds}")
    interval = f"{scrape_interval_seconds}s"
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": LAB_JOB,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": [exporter_address]}],
                # No source labels: the rule always matches and overwrites instance with the fixed name.
                "relabel_configs": [{"target_label": "instance", "replacement": LAB_INSTANCE}],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
