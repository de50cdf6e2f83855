"""Experiment tracking ([tracking]): log every audit to MLflow (``pip install 'advaudit[mlflow]'``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.config.names import identifier
from audit.core.errors import UsageError

DEFAULT_STORE = "sqlite:///mlflow.db"  # MLflow 3's recommended local backend (recent releases' own default too)


@dataclass(frozen=True)
class TrackingConfig:
    """mlflow: log the run (params, metrics, tags, the output directory as artifacts); tracking_uri: the MLflow
    store ("" = sqlite:///mlflow.db, a SQLite database in the working directory, MLflow 3's recommended local backend;
    or "sqlite:///path/runs.db", "http://host:5000", a database URI); experiment: its name."""

    mlflow: bool = False
    tracking_uri: str = ""
    experiment: str = "advaudit"

    def validate(self, path: str) -> None:
        if self.mlflow and not self.experiment:
            raise UsageError(f"{path}.experiment: give the MLflow experiment a name")
        if self.experiment:
            identifier(f"{path}.experiment", self.experiment)


def store_uri(tracking_uri: str) -> str:
    """The store a run is logged to: ``tracking_uri``, or for "" the default store made absolute
    (``sqlite:////abs/cwd/mlflow.db``), so the CLI's line names the file to open with ``mlflow ui``."""
    if tracking_uri:
        return tracking_uri
    return "sqlite:///" + Path("mlflow.db").resolve().as_posix()
