from __future__ import annotations

import pytest

from inquest.engine.redaction import REDACTED, is_sensitive_name, redact, redact_arguments, redact_named_value


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgres://app:s3cr3t-pw@db.shop:5432/orders", "s3cr3t-pw"),
        ("password=hunter2 user=bob", "hunter2"),
        ("--db-password=hunter2", "hunter2"),
        ('{"password": "two words"}', "two words"),
        ("Authorization: Bearer abcdefghijklmnop123", "abcdefghijklmnop123"),
        ("basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("key AKIAABCDEFGHIJKLMNOP in use", "AKIAABCDEFGHIJKLMNOP"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "wJalrXUtnFEMI"),
        ("token: ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
        ("oauth_token=zzz111&x=1", "zzz111"),
        ("api_key: sk-live-1234", "sk-live-1234"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "MIIEabc"),
        ("xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
    ],
)
def test_credentials_are_removed(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "http://payments.shop:8080/charge",
        'Back-off pulling image "registry.example.com/web:1.9"',
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "author=me",
        "0/3 nodes are available: 3 Insufficient cpu.",
        "",
    ],
)
def test_harmless_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_url_keeps_user_and_host_for_address_detection() -> None:
    assert redact("redis://default:pw@redis.cache:6379") == f"redis://default:{REDACTED}@redis.cache:6379"


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("DB_PASSWORD", True),
        ("API_TOKEN", True),
        ("STRIPE_SECRET", True),
        ("AUTHORIZATION", True),
        ("LOG_LEVEL", False),
    ],
)
def test_sensitive_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_name(name) is sensitive


def test_named_value_hides_credentials_by_name_and_scrubs_the_rest() -> None:
    assert redact_named_value("DB_PASSWORD", "plain") == REDACTED
    assert redact_named_value("DB_URL", "postgres://u:p4ss@db:5432/x") == f"postgres://u:{REDACTED}@db:5432/x"
    assert redact_named_value("DB_PASSWORD", "") == ""


# --- gaps found for issue 7: each of these leaked before ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        # Authorization schemes other than Bearer and Basic: the scheme name stays, the credential goes.
        ("Authorization: token ghs_0123shorttoken", "ghs_0123shorttoken", "Authorization: token "),
        ("authorization=ApiKey abcdefghijkl", "abcdefghijkl", "authorization=ApiKey "),
        ('"Proxy-Authorization": "Negotiate YIIBhgYGKwYBBQUC"', "YIIBhgYGKwYBBQUC", "Negotiate "),
        # A flag naming a credential, its value the next word (a shell command line, an exec probe).
        ("app --db-password hunter2 --port 8080", "hunter2", "--port 8080"),
        ("run -api-key 'two words' now", "two words", "now"),
        # Short names of passwords and URL signatures.
        ("DB_PASS=hunter2", "hunter2", "DB_PASS="),
        ("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=Zm9vYmFy%3D", "Zm9vYmFy", "sv=2022-11-02"),
        ("X-Amz-Signature=0f1e2d3c4b5a", "0f1e2d3c4b5a", "X-Amz-Signature="),
        # Token formats recognisable without a name.
        ("github_pat_11ABCDEFG0_abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz", ""),
        ("glpat-abcdefghij0123456789", "abcdefghij0123456789", ""),
        ("charged with sk_live_51H8abcdefghijklmn", "51H8abcdefghijklmn", "charged with "),
        ("maps key AIzaSyA-1234567890abcdefghijklmnopqrstu", "1234567890abcdefghijklmnopqrstu", "maps key "),
        ("//registry.npmjs.org/:_authToken npm_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz", ""),
        ("POST https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX", "XXXXXXXXXXXX", "hooks.slack.com/services/"),
    ],
)
def test_more_credentials_are_removed_and_their_context_kept(text: str, secret: str, kept: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert kept in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "bypass=true compass=north",
        "signal=SIGTERM passed=3",
        "Back-off restarting failed container app in pod web-1_shop(0b1c)",
        "the token expired at 14:02",
        "--port 8080 --log-level debug",
    ],
)
def test_words_near_the_new_patterns_are_unchanged(text: str) -> None:
    assert redact(text) == text


def test_a_credential_given_as_the_argument_after_its_flag_is_hidden_whole() -> None:
    arguments = ["--db-password", "hunter2", "--port", "8080", "--token", "--verbose", "--api-key=k1", "-p", "x"]
    assert redact_arguments(arguments) == (
        "--db-password", REDACTED, "--port", "8080", "--token", "--verbose", f"--api-key={REDACTED}", "-p", "x",
    )  # fmt: skip
    # Joined as the spec diff and the Investigation's evidence show them, nothing of the value is left.
    assert "hunter2" not in " ".join(redact_arguments(["serve", "--db-password", "hunter2"]))
    assert redact_arguments(["sh", "-c", "exec app --password hunter2"]) == (
        "sh", "-c", f"exec app --password {REDACTED}",
    )  # fmt: skip


def test_container_args_command_and_exec_probes_are_read_redacted() -> None:
    from inquest.engine.objects.pods import read_container

    container = read_container(
        {
            "name": "app",
            "image": "registry.example.com/app:1",
            "command": ["/app", "--admin-token", "tok-0123456789"],
            "args": ["--db-password", "hunter2", "--listen=:8080"],
            "livenessProbe": {"exec": {"command": ["check", "--secret", "s3cr3t-value"]}},
        }
    )
    shown = " ".join([*container.command, *container.args, container.liveness])
    for secret in ("tok-0123456789", "hunter2", "s3cr3t-value"):
        assert secret not in shown
    assert "--listen=:8080" in container.args
