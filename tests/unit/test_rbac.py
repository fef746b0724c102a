"""The operator's ClusterRole: generated from the watched resources, read-only but for its own writes."""

from __future__ import annotations

from inquest import rbac

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def test_committed_cluster_role_matches_the_generator() -> None:
    assert rbac.drift() == []


def test_every_watched_resource_is_readable_and_nothing_else_is_writable() -> None:
    rules = rbac.cluster_role()["rules"]
    readable = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
                if {"get", "list", "watch"} <= set(rule["verbs"])}  # fmt: skip
    for watched in rbac.WATCHED_RESOURCES:
        assert (watched.group, watched.plural) in readable
    writable = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
                for resource in rule["resources"] for verb in rule["verbs"] if verb in WRITE_VERBS}  # fmt: skip
    assert writable == {
        ("inquest.dev", "investigations", "create"),
        ("inquest.dev", "investigations", "patch"),
        ("inquest.dev", "investigations/status", "patch"),
        ("inquest.dev", "investigations/status", "update"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("events.k8s.io", "events", "create"),
        ("events.k8s.io", "events", "patch"),
    }


def test_secrets_only_when_asked() -> None:
    def resources(role: dict[str, object]) -> set[str]:
        rules = role["rules"]
        assert isinstance(rules, list)
        return {resource for rule in rules for resource in rule["resources"]}

    assert "secrets" not in resources(rbac.cluster_role())
    assert "secrets" in resources(rbac.cluster_role(watch_secrets=True))
