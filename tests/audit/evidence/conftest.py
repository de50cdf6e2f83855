"""Fixtures of the signing tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def keys(tmp_path, capsys):
    """Two fresh Ed25519 key pairs made by `advaudit keygen`: (k1, k2), each with its .pub beside it."""
    from audit.cli import main
    for name in ("k1", "k2"):
        assert main(["keygen", str(tmp_path / name)]) == 0
    capsys.readouterr()
    return tmp_path / "k1", tmp_path / "k2"
