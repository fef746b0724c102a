"""The lab's simulation annotations belong to the lab alone; the operator must never read them."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "inquest"


def test_operator_code_never_mentions_the_lab_simulation_prefix() -> None:
    offenders = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "lab" not in path.relative_to(PACKAGE).parts
        and "sim.inquest.dev" in path.read_text(errors="replace")
    ]
    assert PACKAGE.is_dir()
    assert offenders == []
