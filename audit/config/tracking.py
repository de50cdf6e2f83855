"""Experiment tracking ([tracking]): log every audit to MLflow (``pip install 'advaudit[mlflow]'``)."""
from __future__ import annotations

from dataclasses import dataclass

from audit.config.names import identifier
from audit.core.errors import UsageError


@dataclass(frozen=True)
class TrackingConfig:
    """mlflow: log the run (params, metrics, tags, the output directory as artifacts); tracking_uri: the MLflow
    store ("" = ./mlruns, a local file store; or "sqlite:///mlflow.db", "http://host:5000"); experiment: its
    name."""

    mlflow: bool = False
    tracking_uri: str = ""
    experiment: str = "advaudit"

    def validate(self, path: str) -> None:
        if self.mlflow and not self.experiment:
            raise UsageError(f"{path}.experiment: give the MLflow experiment a name")
        if self.experiment:
            identifier(f"{path}.experiment", self.experiment)
