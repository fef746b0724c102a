"""The operator's configuration: validation naming the field, overrides, credentials, and live reload."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from inquest import config
from inquest.config import ConfigError, ConfigReport, ConfigWatcher, OperatorConfig, Override, load_config
from inquest.metrics.catalog import DEFAULT_CATALOG

CHART_VALUES = Path(__file__).resolve().parents[2] / "helm" / "inquest" / "values.yaml"


def problems(text: str | None, overrides: list[Override] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config(text, overrides or [])
    return {problem.field: problem.message for problem in caught.value.problems}


# --- loading -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "  \n", "{}", "null", "# only a comment\n"])
def test_an_empty_document_is_the_defaults(text: str | None) -> None:
    loaded = load_config(text)
    assert loaded == OperatorConfig()
    assert loaded.prometheus.url is None
    assert loaded.prometheus_settings() is None
    assert loaded.catalog() is DEFAULT_CATALOG
    assert (loaded.watch.namespaces, loaded.watch.watch_secrets) == ((), False)
    assert loaded.watch.continuous_interval.total_seconds() == 15


def test_the_charts_default_config_is_valid_and_means_the_defaults() -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    assert load_config(yaml.safe_dump(values["config"])) == OperatorConfig()


def test_a_full_document() -> None:
    loaded = load_config(
        """
prometheus:
  url: https://mimir.monitoring:8080/prometheus/
  queryTimeoutSeconds: 1.5
  budgetSeconds: 4
  headers: {X-Scope-OrgID: tenant-a}
  auth:
    bearerToken: {secretKeyRef: {name: prometheus-token, key: token}}
    ca: {file: /etc/ssl/prometheus-ca.pem}
metricCatalog:
  max_points: 500
  templates:
    - {name: istio_requests, enabled: false}
notifications:
  routes: [{match: {namespace: shop}, slack: {channel: "#shop"}}]
watch:
  namespaces: [shop, payments]
  watchSecrets: true
  continuousIntervalSeconds: 30
"""
    )
    assert loaded.prometheus.url == "https://mimir.monitoring:8080/prometheus"
    assert loaded.prometheus.headers == {"X-Scope-OrgID": "tenant-a"}
    catalog = loaded.catalog()
    assert catalog.max_points == 500
    assert catalog.template("istio_requests").enabled is False
    assert catalog.template("http_requests") == DEFAULT_CATALOG.template("http_requests")
    assert loaded.notifications == {"routes": [{"match": {"namespace": "shop"}, "slack": {"channel": "#shop"}}]}
    assert loaded.watch.namespaces == ("shop", "payments")
    assert loaded.watch.watch_secrets is True
    assert loaded.watch.continuous_interval.total_seconds() == 30
    settings = loaded.prometheus_settings(Path("/secrets"))
    assert settings is not None
    assert settings.url == "https://mimir.monitoring:8080/prometheus"
    assert (settings.query_timeout_seconds, settings.budget_seconds) == (1.5, 4.0)
    assert settings.bearer_token_file == Path("/secrets/prometheus-token/token")
    assert settings.ca_file == Path("/etc/ssl/prometheus-ca.pem")
    assert settings.extra_headers == {"X-Scope-OrgID": "tenant-a"}


def test_null_sections_and_an_empty_url_mean_the_defaults() -> None:
    loaded = load_config("prometheus: {url: '', headers: null, auth: null}\nmetricCatalog:\nnotifications:\nwatch:\n")
    assert loaded == OperatorConfig()


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "prometheus: {queryTimeoutSeconds: -1}",
            "prometheus.queryTimeoutSeconds",
            "must be greater than 0 (got -1)",
        ),
        ("prometheus: {budgetSeconds: 601}", "prometheus.budgetSeconds", "must be less than or equal to 600 (got 601)"),
        ("prometheus: {url: 'ftp://p'}", "prometheus.url", "Prometheus url must be http(s)://host[:port][/prefix]"),
        ("prometheus: {url: 'http://p/api/v1'}", "prometheus.url", "give the base url without /api/v1"),
        ("prometheus: {headers: {'bad name': x}}", "prometheus.headers", "invalid HTTP header name 'bad name'"),
        ("prometheus: [1]", "prometheus", "must be a mapping"),
        (
            "prometheus: {auth: {bearerToken: {secretKeyRef: {name: Token, key: t}}}}",
            "prometheus.auth.bearerToken.secretKeyRef.name",
            "must be a Secret name: lowercase letters, digits, '-' and '.' (got 'Token')",
        ),
        (
            "prometheus: {auth: {bearerToken: {secretKeyRef: {name: token}}}}",
            "prometheus.auth.bearerToken.secretKeyRef.key",
            "is required",
        ),
        (
            "prometheus: {auth: {ca: {}}}",
            "prometheus.auth.ca",
            "give exactly one of secretKeyRef {name, key} and file",
        ),
        (
            "prometheus: {auth: {bearerToken: {file: /t}, basicAuth: {username: u, password: {file: /p}}}}",
            "prometheus.auth",
            "configure at most one of bearerToken and basicAuth",
        ),
        (
            "prometheus: {auth: {ca: {file: /ca}, insecureSkipVerify: true}}",
            "prometheus.auth",
            "ca and insecureSkipVerify contradict each other: choose one",
        ),
        (
            "prometheus: {headers: {Authorization: x}, auth: {bearerToken: {file: /t}}}",
            "prometheus",
            "headers set Authorization, which conflicts with auth: use one of them",
        ),
        (
            "watch: {namespaces: [Shop]}",
            "watch.namespaces",
            "'Shop' is not a namespace name (lowercase letters, digits and '-', 63 at most)",
        ),
        ("watch: {namespaces: [a, a]}", "watch.namespaces", "lists a namespace twice"),
        ("watch: {watchSecrets: maybe}", "watch.watchSecrets", "must be a valid boolean"),
        (
            "watch: {continuousIntervalSeconds: 0}",
            "watch.continuousIntervalSeconds",
            "must be greater than or equal to 1 (got 0)",
        ),
        ("notifications: [slack]", "notifications", "must be a mapping"),
    ],
)
def test_an_invalid_value_names_its_field_and_what_is_allowed(text: str, field: str, message: str) -> None:
    found = problems(text)
    assert field in found, found
    assert found[field].startswith(message), found[field]


def test_an_unknown_field_lists_the_allowed_ones() -> None:
    found = problems("prometheus: {urll: http://p}\nwatchh: {}\nwatch: {namespace: [a]}")
    assert found == {
        "prometheus.urll": "unknown field; allowed: auth, budgetSeconds, headers, queryTimeoutSeconds, url",
        "watchh": "unknown field; allowed: metricCatalog, notifications, prometheus, watch",
        "watch.namespace": "unknown field; allowed: continuousIntervalSeconds, namespaces, watchSecrets",
    }


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("prometheus: {queryTimeoutSeconds: 0, budgetSeconds: 0}")
    assert caught.value.fields == ("prometheus.queryTimeoutSeconds", "prometheus.budgetSeconds")
    assert str(caught.value) == (
        "prometheus.queryTimeoutSeconds: must be greater than 0 (got 0); "
        "prometheus.budgetSeconds: must be greater than 0 (got 0)"
    )


def test_header_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config('prometheus: {headers: {X-Token: "secret\\nvalue"}}')
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prometheus: {url: [", "is not valid YAML at line 1, column 20"),
        ("- a\n- b\n", "must be a mapping of metricCatalog, notifications, prometheus, watch; got a list"),
    ],
)
def test_a_document_that_is_not_a_mapping(text: str, message: str) -> None:
    assert problems(text)[config.CONFIG_KEY].startswith(message)


def test_catalog_errors_point_at_the_template_as_written() -> None:
    found = problems(
        "metricCatalog:\n"
        "  max_points: 3\n"
        "  templates:\n"
        "    - {name: brand_new}\n"
        "    - {name: http_requests, thresholds: {floor: -1}}\n"
    )
    assert found["metricCatalog.max_points"] == "must be greater than or equal to 20 (got 3)"
    assert found["metricCatalog.templates[0].query"] == "is required (template 'brand_new')"
    assert found["metricCatalog.templates[1].thresholds.floor"].startswith("must be greater than or equal to 0")
    assert found["metricCatalog.templates[1].thresholds.floor"].endswith("(template 'http_requests')")


@pytest.mark.parametrize("templates", ["[{query: up}]", "[{name: [1]}]", "3", "{a: 1}"])
def test_catalog_templates_must_be_a_list_of_named_ones(templates: str) -> None:
    assert problems(f"metricCatalog: {{templates: {templates}}}") == {
        "metricCatalog.templates": "must be a list of templates, each with a name (merged by name)"
    }


# --- overrides ---------------------------------------------------------------------------------------------------


def test_environment_overrides_the_document() -> None:
    environ = {
        "PROMETHEUS_URL": "http://legacy:9090",
        "INQUEST_PROMETHEUS_URL": "http://specific:9090",
        "INQUEST_PROMETHEUS_QUERY_TIMEOUT_SECONDS": "5",
        "INQUEST_PROMETHEUS_BUDGET_SECONDS": "8",
        "INQUEST_PROMETHEUS_HEADERS": "X-Scope-OrgID=tenant-b, X-Extra=1",
        "INQUEST_PROMETHEUS_CA_FILE": "/local/ca.pem",
        "INQUEST_WATCH_NAMESPACES": "shop, payments",
        "INQUEST_WATCH_SECRETS": "true",
        "INQUEST_CONTINUOUS_INTERVAL_SECONDS": "5",
        "INQUEST_SECRETS_DIR": "",
        "UNRELATED": "x",
    }
    loaded = load_config(
        "prometheus: {url: http://document:9090, budgetSeconds: 2, headers: {X-Scope-OrgID: tenant-a}}\n"
        "watch: {namespaces: [other]}",
        config.environment_overrides(environ),
    )
    assert loaded.prometheus.url == "http://specific:9090"
    assert (loaded.prometheus.query_timeout_seconds, loaded.prometheus.budget_seconds) == (5.0, 8.0)
    assert loaded.prometheus.headers == {"X-Scope-OrgID": "tenant-b", "X-Extra": "1"}
    assert loaded.prometheus.auth.ca == config.CredentialRef(file=Path("/local/ca.pem"))
    assert (loaded.watch.namespaces, loaded.watch.watch_secrets) == (("shop", "payments"), True)
    assert loaded.watch.continuous_interval_seconds == 5


def test_empty_environment_variables_are_ignored() -> None:
    assert config.environment_overrides({"PROMETHEUS_URL": "", "INQUEST_WATCH_SECRETS": "  "}) == []


def test_an_environment_auth_method_replaces_the_documents() -> None:
    overrides = config.environment_overrides({"INQUEST_PROMETHEUS_BEARER_TOKEN_FILE": "/local/token"})
    loaded = load_config("prometheus: {auth: {basicAuth: {username: u, password: {file: /p}}}}", overrides)
    assert loaded.prometheus.auth.basic_auth is None
    assert loaded.prometheus.auth.bearer_token == config.CredentialRef(file=Path("/local/token"))


def test_an_invalid_override_is_named_with_its_source() -> None:
    overrides = [
        *config.environment_overrides({"INQUEST_PROMETHEUS_BUDGET_SECONDS": "-3"}),
        Override("watch.namespaces", ["Bad"], "--namespace"),
    ]
    assert problems(None, overrides) == {
        "prometheus.budgetSeconds (from INQUEST_PROMETHEUS_BUDGET_SECONDS)": "must be greater than 0 (got '-3')",
        "watch.namespaces (from --namespace)": (
            "'Bad' is not a namespace name (lowercase letters, digits and '-', 63 at most)"
        ),
    }


# --- credentials -------------------------------------------------------------------------------------------------


def test_a_secret_key_ref_resolves_under_the_secrets_dir() -> None:
    ref = config.CredentialRef.model_validate({"secretKeyRef": {"name": "prometheus-token", "key": "token"}})
    assert ref.path(Path("/mnt")) == Path("/mnt/prometheus-token/token")
    assert ref.path(config.SECRETS_DIR) == Path("/var/run/secrets/inquest/prometheus-token/token")
    assert config.secrets_dir_from({config.SECRETS_DIR_ENV: "/local/secrets"}) == Path("/local/secrets")
    assert config.secrets_dir_from({}) == config.SECRETS_DIR


def test_basic_auth_reads_the_password_and_names_it_when_missing(tmp_path: Path) -> None:
    (tmp_path / "prometheus-auth").mkdir()
    (tmp_path / "prometheus-auth" / "password").write_text("s3cret\n")
    text = (
        "prometheus:\n"
        "  url: http://p:9090\n"
        "  auth: {basicAuth: {username: inquest, password: {secretKeyRef: {name: prometheus-auth, key: password}}}}\n"
    )
    settings = load_config(text).prometheus_settings(tmp_path)
    assert settings is not None
    assert settings.basic_auth_username == "inquest"
    assert settings.basic_auth_password is not None
    assert settings.basic_auth_password.get_secret_value() == "s3cret"
    with pytest.raises(ConfigError) as caught:
        load_config(text).prometheus_settings(tmp_path / "elsewhere")
    assert caught.value.fields == ("prometheus.auth.basicAuth.password",)
    assert "cannot read" in str(caught.value)


def test_check_credentials_names_each_unmounted_secret(tmp_path: Path) -> None:
    (tmp_path / "token").mkdir()
    (tmp_path / "token" / "token").write_text("t")
    loaded = load_config(
        "prometheus:\n"
        "  auth:\n"
        "    bearerToken: {secretKeyRef: {name: token, key: token}}\n"
        "    ca: {secretKeyRef: {name: prometheus-ca, key: ca.crt}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        config.check_credentials(loaded, tmp_path)
    (problem,) = caught.value.problems
    assert problem.field == "prometheus.auth.ca"
    assert problem.message.startswith(f"Secret prometheus-ca key ca.crt is not mounted at {tmp_path}/prometheus-ca/")
    (tmp_path / "prometheus-ca").mkdir()
    (tmp_path / "prometheus-ca" / "ca.crt").write_text("pem")
    config.check_credentials(loaded, tmp_path)


# --- changes and live reload -------------------------------------------------------------------------------------


def test_changed_fields_are_leaves_except_in_opaque_sections() -> None:
    before = load_config("metricCatalog: {max_points: 400}\nnotifications: {a: {b: 1}}")
    after = load_config(
        "prometheus: {url: http://p:9090, headers: {X-A: b}}\n"
        "metricCatalog: {max_points: 500}\nnotifications: {a: {b: 2}}\nwatch: {namespaces: [shop]}"
    )
    assert config.changed_fields(before, after) == (
        "metricCatalog",
        "notifications",
        "prometheus.headers.X-A",
        "prometheus.url",
        "watch.namespaces",
    )
    assert config.changed_fields(after, after) == ()


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[OperatorConfig, tuple[str, ...]]] = []
        self.reports: list[ConfigReport] = []

    def apply(self, new: OperatorConfig, changed: tuple[str, ...]) -> None:
        self.applied.append((new, changed))

    async def report(self, report: ConfigReport) -> None:
        self.reports.append(report)


async def test_the_watcher_applies_a_valid_change(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    watcher = ConfigWatcher(OperatorConfig(), recorder.apply, recorder.report)
    caplog.set_level(logging.INFO, logger="inquest.config")
    report = await watcher.update("prometheus: {url: http://p:9090}\nwatch: {continuousIntervalSeconds: 5}")
    assert report is not None
    assert (report.accepted, report.warning, report.reason) == (True, False, "ConfigApplied")
    assert report.fields == ("prometheus.url", "watch.continuousIntervalSeconds")
    assert report.message == "configuration applied: prometheus.url, watch.continuousIntervalSeconds changed"
    assert watcher.current.prometheus.url == "http://p:9090"
    assert [changed for _, changed in recorder.applied] == [report.fields]
    assert recorder.reports == [report]
    assert caplog.messages == [report.log_line]


async def test_the_watcher_keeps_the_last_good_config_on_an_invalid_change(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    good = load_config("prometheus: {url: http://p:9090}")
    watcher = ConfigWatcher(good, recorder.apply, recorder.report)
    caplog.set_level(logging.INFO, logger="inquest.config")
    bad = "prometheus: {url: http://p:9090, budgetSeconds: 0}"
    report = await watcher.update(bad)
    assert report is not None
    assert (report.accepted, report.warning, report.reason) == (False, True, "ConfigRejected")
    assert report.fields == ("prometheus.budgetSeconds",)
    assert report.message == (
        "configuration refused, the last good one stays in force: "
        "prometheus.budgetSeconds: must be greater than 0 (got 0)"
    )
    assert watcher.current is good
    assert recorder.applied == []
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [("WARNING", report.log_line)]
    # The same refused document again (a resync, an annotation change) is not reported twice...
    assert await watcher.update(bad) is None
    # ...and a fixed one is applied.
    fixed = await watcher.update("prometheus: {url: http://p:9090, budgetSeconds: 5}")
    assert fixed is not None
    assert fixed.fields == ("prometheus.budgetSeconds",)
    assert watcher.current.prometheus.budget_seconds == 5
    assert len(recorder.reports) == 2


async def test_the_watcher_ignores_an_unchanged_document() -> None:
    recorder = Recorder()
    watcher = ConfigWatcher(load_config("watch: {continuousIntervalSeconds: 5}"), recorder.apply, recorder.report)
    assert await watcher.update("watch:\n  continuousIntervalSeconds: 5\n") is None
    assert (recorder.applied, recorder.reports) == ([], [])


async def test_the_watcher_says_which_fields_wait_for_a_restart() -> None:
    recorder = Recorder()
    watcher = ConfigWatcher(OperatorConfig(), recorder.apply, recorder.report)
    report = await watcher.update("watch: {namespaces: [shop], watchSecrets: true, continuousIntervalSeconds: 5}")
    assert report is not None
    assert report.message == (
        "configuration applied: watch.continuousIntervalSeconds, watch.namespaces, watch.watchSecrets changed; "
        "these take effect when the operator restarts: watch.namespaces, watch.watchSecrets"
    )


async def test_the_watcher_keeps_overrides_and_checks_credentials(tmp_path: Path) -> None:
    recorder = Recorder()
    overrides = config.environment_overrides({"INQUEST_PROMETHEUS_URL": "http://local:9090"})
    watcher = ConfigWatcher(load_config(None, overrides), recorder.apply, recorder.report, overrides, tmp_path)
    report = await watcher.update(
        "prometheus: {url: http://cluster:9090, auth: {bearerToken: {secretKeyRef: {name: token, key: token}}}}"
    )
    assert report is not None
    assert (report.reason, report.fields) == ("ConfigRejected", ("prometheus.auth.bearerToken",))
    assert watcher.current.prometheus.url == "http://local:9090"
    (tmp_path / "token").mkdir()
    (tmp_path / "token" / "token").write_text("t")
    report = await watcher.update(
        "prometheus: {url: http://cluster:9090, auth: {bearerToken: {secretKeyRef: {name: token, key: token}}}}"
    )
    assert report is not None
    assert (report.reason, report.fields) == ("ConfigApplied", ("prometheus.auth.bearerToken",))
    assert watcher.current.prometheus.url == "http://local:9090"


async def test_a_change_the_operator_cannot_apply_is_refused() -> None:
    def apply(new: OperatorConfig, changed: tuple[str, ...]) -> None:
        raise ConfigError([config.Problem("prometheus", "cannot build the client")])

    recorder = Recorder()
    watcher = ConfigWatcher(OperatorConfig(), apply, recorder.report)
    report = await watcher.update("prometheus: {url: http://p:9090}")
    assert report is not None
    assert (report.reason, report.fields) == ("ConfigRejected", ("prometheus",))
    assert watcher.current == OperatorConfig()


async def test_a_failing_report_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(report: ConfigReport) -> None:
        raise RuntimeError("API down")

    watcher = ConfigWatcher(OperatorConfig(), lambda new, changed: None, broken)
    report = await watcher.update("watch: {continuousIntervalSeconds: 5}")
    assert report is not None
    assert watcher.current.watch.continuous_interval_seconds == 5
    assert "could not report ConfigApplied" in caplog.text


async def test_a_removed_config_keeps_the_last_good_one() -> None:
    recorder = Recorder()
    good = load_config("watch: {continuousIntervalSeconds: 5}")
    watcher = ConfigWatcher(good, recorder.apply, recorder.report)
    report = await watcher.removed()
    assert (report.accepted, report.reason, report.fields) == (False, "ConfigRemoved", ("config.yaml",))
    assert watcher.current is good


def test_the_override_table_names_real_fields() -> None:
    for name, (field, parse, _) in config.ENVIRONMENT.items():
        sample: dict[str, Any] = {
            "prometheus.url": "http://p:9090",
            "watch.namespaces": "a,b",
            "watch.watchSecrets": "false",
            "prometheus.headers": "X-A=b",
        }
        text = sample.get(field, "/some/file" if "FILE" in name else "3")
        load_config(None, [Override(field, parse(text), name)])
