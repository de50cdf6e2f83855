"""MLflow pre-flight: the store is checked before any work (the run itself, logged and read back by stock MLflow in
a fresh process: test_mlflow_store.py)."""
from __future__ import annotations

import pytest

from audit.core.errors import UsageError


def test_a_file_store_needs_mlflows_own_switch_and_the_default_store_passes(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from audit.api import tracking_check
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tracking_check, "_mlflow_major", lambda: 3)
    for uri in (str(tmp_path / "mlruns"), (tmp_path / "mlruns").as_uri()):
        with pytest.raises(UsageError, match="MLFLOW_ALLOW_FILE_STORE=true") as e:
            tracking_check.check_tracking_uri(uri)
        assert "sqlite:///mlflow.db" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the user's own choice: MLflow's behaviour
    tracking_check.check_tracking_uri(str(tmp_path / "mlruns"))
    monkeypatch.setattr(tracking_check, "_mlflow_major", lambda: 2)  # MLflow 2 has no such switch
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    tracking_check.check_tracking_uri(str(tmp_path / "mlruns"))
    tracking_check.check_tracking_uri("")  # the default store: ./mlflow.db can be created here
    assert not (tmp_path / "mlflow.db").exists()  # checked, not created


def test_a_database_store_without_sqlalchemy_is_a_usage_error_before_any_work(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import importlib.util

    from audit.api.tracking_check import check_tracking_uri
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "alembic" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    for uri in ("", "sqlite:///runs.db"):
        with pytest.raises(UsageError, match="alembic .not installed.: pip install 'advaudit.mlflow.'"):
            check_tracking_uri(uri)


@pytest.mark.parametrize("uri", ["postgres://admin:hunter2@db:5432/mlflow", "postgresql://admin:hunter2@/mlflow"])
def test_a_refused_tracking_uri_never_prints_its_password(uri):
    from audit.api import tracking_check
    with pytest.raises(UsageError) as e:
        tracking_check.check_tracking_uri(uri)
    assert "hunter2" not in str(e.value) and "admin" in str(e.value)
