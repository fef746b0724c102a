from __future__ import annotations

import pytest

from inquest.engine.redaction import REDACTED, is_sensitive_name, redact, redact_named_value


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
