"""`python -m inquest run`: the operator in the foreground, against the current kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from inquest.notify.mounted import MountedSecrets
    from inquest.notify.routes import NotifyConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inquest", description="inquest, the read-only AI SRE operator")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the operator in the foreground")
    run.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch only this namespace (repeatable); default: all"
    )
    run.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG or in-cluster")
    run.add_argument(
        "--prometheus-url", default=os.environ.get("PROMETHEUS_URL"), help="default: $PROMETHEUS_URL (optional)"
    )
    run.add_argument("--prometheus-query-timeout-seconds", type=float, default=2.0, help="per query (default: 2)")
    run.add_argument(
        "--prometheus-budget-seconds", type=float, default=3.0, help="all queries of one investigation (default: 3)"
    )
    run.add_argument("--prometheus-bearer-token-file", default=None, help="re-read when it changes")
    run.add_argument("--prometheus-ca-file", default=None, help="CA bundle for a TLS Prometheus")
    run.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra header, e.g. X-Scope-OrgID=tenant-a for Thanos, Mimir or Cortex (repeatable)",
    )
    run.add_argument(
        "--continuous-interval-seconds",
        type=int,
        default=None,
        help="how often Continuous investigations re-check their evidence (default: the ConfigMap's, else 15)",
    )
    run.add_argument(
        "--metric-catalog",
        default=None,
        metavar="FILE",
        help="YAML overrides for the metric catalog: settings, label aliases, templates merged by name",
    )
    run.add_argument(
        "--notify-config",
        default=None,
        metavar="FILE",
        help="YAML notifiers (Slack, PagerDuty, webhooks; keys in Secrets) and routes: docs/notifications.md",
    )
    run.add_argument(
        "--secrets-dir",
        default=None,
        metavar="DIR",
        help="where mounted Secrets are read, DIR/NAME/KEY: notifier secretRefs and the ConfigMap's secretKeyRefs "
        "(default: $INQUEST_SECRETS_DIR, else /var/run/secrets/inquest)",
    )
    run.add_argument(
        "--secrets-namespace",
        default=None,
        metavar="NS",
        help="the namespace of the Secrets mounted in --secrets-dir; a notifier secretRef to another one is refused",
    )
    run.add_argument(
        "--notify-secrets-from-api",
        action="store_true",
        help="read notifier secretRefs through the API instead of --secrets-dir (needs get on each Secret; "
        "docs/security.md)",
    )
    run.add_argument("--watch-secrets", action="store_true", help="also watch Secrets' metadata (off by default)")
    run.add_argument("--liveness", default=None, help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--intake-port", type=int, default=None, help="serve the Alertmanager webhook (POST /alertmanager) on this port"
    )
    run.add_argument(
        "--metrics-port", type=int, default=0, help="serve the operator's metrics (GET /metrics) on this port; 0: off"
    )
    run.add_argument("--intake-token-file", default=None, help="the intake's bearer token, from this file")
    run.add_argument(
        "--intake-token-secret",
        default=None,
        metavar="NS/NAME",
        help="...or from this Secret's `token`, read through the API (needs get on it; docs/security.md)",
    )
    run.add_argument(
        "--intake-max-creations-per-minute",
        type=int,
        default=60,
        metavar="N",
        help="the intake opens at most N Investigations in any minute; past that a new alert group is answered 503 "
        "with Retry-After and Alertmanager sends it again; 0: no cap (default: 60)",
    )
    run.add_argument(
        "--config-map",
        default=os.environ.get("INQUEST_CONFIG_MAP"),
        metavar="NAMESPACE/NAME",
        help="ConfigMap whose config.yaml configures the operator, applied live (docs/configuration.md); "
        "flags given explicitly win over it; default: $INQUEST_CONFIG_MAP",
    )
    run.add_argument("--verbose", "-v", action="store_true")
    return parser


async def run(arguments: argparse.Namespace) -> None:
    # Imported here, after main() has set KUBECONFIG: the official client reads it once, at import time.
    import kopf

    from inquest import handlers
    from inquest.cache import ClusterCache
    from inquest.clients.informer import CacheFeed
    from inquest.clients.kube import KubeWriter, api_client_from_environment
    from inquest.clients.prometheus import PrometheusClient, PrometheusSettings
    from inquest.metrics.catalog import DEFAULT_CATALOG
    from inquest.metrics.collector import MetricsCollector
    from inquest.notify import Notifier
    from inquest.observability import Observability, start_metrics_server
    from inquest.rbac import SECRETS, WATCHED_RESOURCES
    from inquest.service import InvestigationService, ServiceSettings

    cache = ClusterCache()
    observability = Observability(cache) if arguments.metrics_port else None
    writer = KubeWriter.from_environment(arguments.kubeconfig)
    on_outcome = observability.notification if observability else None
    notifier = (
        Notifier.for_kube(arguments.notify, writer, on_outcome=on_outcome, secrets=arguments.notify_secrets)
        if arguments.notify is not None
        else None
    )
    prometheus = None
    if arguments.prometheus_url:
        headers = dict(header.split("=", 1) for header in arguments.prometheus_header)
        prometheus = PrometheusClient(
            PrometheusSettings(
                url=arguments.prometheus_url,
                query_timeout_seconds=arguments.prometheus_query_timeout_seconds,
                budget_seconds=arguments.prometheus_budget_seconds,
                bearer_token_file=arguments.prometheus_bearer_token_file,
                ca_file=arguments.prometheus_ca_file,
                extra_headers=headers,
            ),
            on_query=observability.prometheus_query if observability else None,
        )
    catalog = DEFAULT_CATALOG.merged(arguments.catalog_overrides) if arguments.catalog_overrides else DEFAULT_CATALOG
    configured = arguments.operator_config
    interval = arguments.continuous_interval_seconds
    continuous_interval = (
        timedelta(seconds=interval)
        if interval is not None
        else (configured.watch.continuous_interval if configured else timedelta(seconds=15))
    )
    service = InvestigationService(
        cache,
        writer,
        ServiceSettings(continuous_interval=continuous_interval),
        metrics=MetricsCollector(prometheus, catalog),
        notifier=notifier,
        observability=observability,
    )
    live = None
    if configured is not None:
        from inquest.configmap import ConfigMapReference, LiveConfig, watcher

        live = LiveConfig(
            ConfigMapReference.parse(arguments.config_map),
            service,
            writer,
            on_query=observability.prometheus_query if observability else None,
            on_outcome=on_outcome,
            secrets=arguments.notify_secrets,
        )
        if notifier is None:
            notifier = live.notifier_for(configured)
            if notifier is not None:
                service.reconfigure(notifier=notifier)
        # Explicit flags win; otherwise the ConfigMap's Prometheus and catalog are used, and followed live.
        if prometheus is None and not arguments.metric_catalog:
            service.reconfigure(metrics=live.collector_for(configured))
    watch_secrets = arguments.watch_secrets or bool(configured and configured.watch.watch_secrets)
    watched = [*WATCHED_RESOURCES, SECRETS] if watch_secrets else list(WATCHED_RESOURCES)
    reader = api_client_from_environment(
        arguments.kubeconfig, connections=len(watched) * len(arguments.namespace or [""]) + 2
    )
    feed = CacheFeed(
        cache,
        reader,
        watched,
        namespaces=arguments.namespace or None,
        on_restart=observability.informer_restarted if observability else None,
        on_stall=observability.informer_stalled if observability else None,
    )
    registry = handlers.build_registry(service, feed.ready)
    if live is not None and configured is not None:
        handlers.watch_config(registry, live, watcher(configured, live, arguments.config_overrides))
        if arguments.namespace and live.reference.namespace not in arguments.namespace:
            arguments.namespace.append(live.reference.namespace)  # so that its ConfigMap's events arrive
    settings = kopf.OperatorSettings()
    handlers.configure(settings)
    intake = None
    metrics_server = None
    feed.start()
    try:
        if observability is not None:
            observability.count_watch_restarts()
            metrics_server = await start_metrics_server(observability, arguments.metrics_port)
        if arguments.intake_port is not None:
            from inquest.intake.limits import IntakeLimits
            from inquest.intake.server import start_configured_intake

            intake = await start_configured_intake(
                writer,
                arguments.intake_port,
                token_file=arguments.intake_token_file,
                token_secret=arguments.intake_token_secret,
                limits=IntakeLimits(arguments.intake_max_creations_per_minute),
                on_answer=observability.intake_answered if observability else None,
            )
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not arguments.namespace,
            namespaces=arguments.namespace,
            liveness_endpoint=arguments.liveness,
        )
    finally:
        if intake is not None:
            await intake.cleanup()
        if metrics_server is not None:
            await metrics_server.cleanup()
        feed.stop()
        await service.close()
        if notifier is not None:
            await notifier.close()
        writer.close()
        if prometheus is not None:
            prometheus.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not arguments.verbose:
        # kopf logs every handler call at INFO; with a watch on every pod that drowns what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if arguments.kubeconfig:
        os.environ["KUBECONFIG"] = arguments.kubeconfig
    if arguments.intake_port is not None and (arguments.intake_token_file is None) == (
        arguments.intake_token_secret is None
    ):
        print("--intake-port needs exactly one of --intake-token-file and --intake-token-secret", file=sys.stderr)
        return 2
    if arguments.intake_max_creations_per_minute < 0:
        print("--intake-max-creations-per-minute must be 0 (no cap) or more", file=sys.stderr)
        return 2
    from inquest import config as operator_config
    from inquest.notify.mounted import MountedSecrets

    if arguments.secrets_dir:
        os.environ[operator_config.SECRETS_DIR_ENV] = arguments.secrets_dir  # so the ConfigMap's paths agree
    # By default notifier Secrets are files the kubelet mounts: no Secret is read through the API.
    mounted = MountedSecrets(operator_config.secrets_dir_from(os.environ), arguments.secrets_namespace)
    arguments.notify_secrets = None if arguments.notify_secrets_from_api else mounted
    arguments.notify = None
    if arguments.notify_config:
        from inquest.notify.routes import ConfigError, parse_config

        try:
            arguments.notify = parse_config(Path(arguments.notify_config).read_text())
        except (OSError, ConfigError) as error:
            print(f"--notify-config {arguments.notify_config}: {error}", file=sys.stderr)
            return 2
        if arguments.notify_secrets is not None and _unmounted(
            mounted, arguments.notify, f"--notify-config {arguments.notify_config}: "
        ):
            return 2
    arguments.operator_config = None
    arguments.config_overrides = []
    if arguments.config_map:
        from inquest.configmap import ConfigMapReference, read_config_text

        try:
            reference = ConfigMapReference.parse(arguments.config_map)
            environment = operator_config.environment_overrides(os.environ)
            text = read_config_text(reference, arguments.kubeconfig)
            arguments.operator_config = operator_config.load_config(text, environment)
            operator_config.check_credentials(arguments.operator_config)
            if arguments.operator_config.notifications:
                from inquest.notify.routes import NotifyConfig

                routes = NotifyConfig.model_validate(arguments.operator_config.notifications)
                if arguments.notify_secrets is not None and _unmounted(
                    mounted, routes, f"configuration ({arguments.config_map}): notifications."
                ):
                    return 2
        except ValueError as error:  # ConfigError and pydantic's ValidationError both name the field
            print(f"configuration ({arguments.config_map}): {error}", file=sys.stderr)
            return 2
        arguments.config_overrides = environment
    arguments.catalog_overrides = None
    if arguments.metric_catalog:
        overrides = yaml.safe_load(Path(arguments.metric_catalog).read_text()) or {}
        from pydantic import ValidationError

        from inquest.metrics.catalog import DEFAULT_CATALOG

        try:
            DEFAULT_CATALOG.merged(overrides)
        except (ValidationError, KeyError, TypeError) as error:
            print(f"--metric-catalog {arguments.metric_catalog}: {error}", file=sys.stderr)
            return 2
        arguments.catalog_overrides = overrides
    asyncio.run(run(arguments))
    return 0


def _unmounted(mounted: MountedSecrets, routes: NotifyConfig, prefix: str) -> bool:
    """Says, for each notifier Secret that is not mounted, which notifier needs it and how to mount it."""
    problems = mounted.unmounted(routes)
    for problem in problems:
        print(f"{prefix}{problem}", file=sys.stderr)
    return bool(problems)


if __name__ == "__main__":
    raise SystemExit(main())
