"""One MLflow run per audit: params (config, policy hash, threat model), metrics (per variant clean, robust per attack
and eps, ECE; every finding's metrics), tags (verdict, candidate, the policy's purpose, an INCOMPLETE run's evidence
gaps) and the output directory (report, JSON, evidence bundle) as artifacts. Written through ``MlflowClient`` (no
global MLflow state is touched) to the tracking URI, by default ``sqlite:///mlflow.db`` in the working directory
(MLflow 3's recommended local backend, which stock MLflow reads back with no environment variable: ``mlflow ui
--backend-store-uri sqlite:///mlflow.db``); the artifacts go to the experiment's artifact location (for a new local
database, ``./mlruns`` beside it)."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

from audit.config.tracking import store_uri
from audit.core.errors import UsageError
from audit.core.net import redact
from audit.core.result import AuditResult

ARTIFACT_DIR = "advaudit"
TAG_LIMIT = 5000  # characters of a tag value MLflow stores (its own bound is 8,000)
log = logging.getLogger(__name__)


def _name(text: str) -> str:
    """An MLflow metric or param key (letters, digits, _ - . / and spaces)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def metrics_of(result: AuditResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in result.variants:
        if v.clean_accuracy is not None:
            out[f"{v.name}/clean_accuracy"] = v.clean_accuracy.value
        if v.ece is not None:
            out[f"{v.name}/ece"] = v.ece
        for p in v.robustness:
            out[f"{v.name}/robust/{p.attack}/eps_{p.eps:g}"] = p.robust_accuracy
    for f in result.findings:
        for k, value in f.metrics.items():
            out[f"{f.id}/{k}"] = float(value)
    return {_name(k): v for k, v in out.items() if v == v}  # NaN cannot be logged


def params_of(result: AuditResult) -> dict[str, str]:
    tm = result.threat_model
    c = result.config
    params = {"candidate": result.candidate, "policy": result.policy.name, "policy_sha256": result.policy.sha256,
              "data": result.dataset.name, "n_train": result.dataset.n_train, "n_test": result.dataset.n_test,
              "model": result.model.factory or result.model.source, "seed": c.get("seed"),
              "attacks": ",".join(c.get("attacks", {}).get("attacks", ())),
              "eps_grid": ",".join(f"{e:g}" for e in c.get("attacks", {}).get("eps", ())),
              "variants": ",".join(v.name for v in result.variants)}
    if tm is not None:
        params.update(threat_model=tm.name or "", threat_norm=tm.norm, threat_eps=tm.eps)
    if result.model.model_class:
        params["model_class"] = result.model.model_class
    prov = result.provenance
    if prov is not None:  # who ran it, from which commit (an in-memory model: its state dict's SHA-256)
        params.update(operator=f"{prov.user}@{prov.host}", model_state_sha256=prov.model_state_sha256)
        if prov.git is not None:
            state = {True: " (dirty)", False: "", None: " (dirty state unknown)"}[prov.git.dirty]
            params["git_commit"] = prov.git.commit + state
        if prov.ci is not None:
            params["ci_run"] = prov.ci.url or f"{prov.ci.system} {prov.ci.run_id}"
    return {_name(k): str(v)[:500] for k, v in params.items()}


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow's own INFO lines (its logger prints to stderr at import) held back unless our INFO is enabled (-v)."""
    loud = log.isEnabledFor(logging.INFO)
    logger = logging.getLogger("mlflow")  # MLflow has its own handler: the root's level (-q) does not reach it
    level = logger.level
    if not loud:
        floor = logging.ERROR if not log.isEnabledFor(logging.WARNING) else logging.WARNING
        logger.setLevel(max(level, floor))
    try:
        yield
    finally:
        logger.setLevel(level)


def log_run_or_warn(result: AuditResult, out: Path | None, tracking_uri: str = "",
                    experiment: str = "advaudit") -> tuple[str | None, str]:
    """``log_run``, for after the output is written: (run id, "") or, when it fails (the server went away
    mid-run), (None, the one warning line); never the output or the verdict's exit code."""
    try:
        with _quiet_mlflow():  # the whole of it: create_run, log_batch and log_artifacts log at INFO too
            return log_run(result, out, tracking_uri, experiment), ""
    except Exception as e:  # noqa: BLE001 - logging is a side channel: the audit's outputs stand
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        problem = (f"could not log the run to MLflow at {redact(store_uri(tracking_uri))}: {msg} (the output "
                   f"directory is complete)")
        log.debug("MLflow logging failed", exc_info=True)
        return None, problem


def log_run(result: AuditResult, out: Path | None, tracking_uri: str = "", experiment: str = "advaudit") -> str:
    """Log ``result`` (and the output directory ``out``) as one MLflow run to ``tracking_uri`` ("" = the default
    store, ``store_uri``); returns its run id."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # library code does not print
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError("tracking.mlflow needs MLflow: pip install 'advaudit[mlflow]'") from None
    with _quiet_mlflow():  # "Creating initial MLflow database tables..." and the like: only when INFO is wanted
        client = MlflowClient(tracking_uri=store_uri(tracking_uri))
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    tags = {"verdict": result.verdict.label, "candidate": result.candidate, "purpose": result.policy.purpose,
            "advaudit_version": result.tool.get("version", ""), "exit_code": str(result.verdict.exit_code)}
    if result.evidence_gaps:  # what an INCOMPLETE run lacks (MLflow bounds a tag's value)
        tags["evidence_gaps"] = "; ".join(result.evidence_gaps)[:TAG_LIMIT]
    run = client.create_run(exp_id, run_name=f"advaudit {result.candidate} {result.created}", tags=tags)
    rid, now = run.info.run_id, int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in metrics_of(result).items()]
    params = [Param(k, v) for k, v in params_of(result).items()]
    for i in range(0, max(len(metrics), 1), 900):  # MLflow's batch limit is 1,000 entries
        client.log_batch(rid, metrics=metrics[i:i + 900], params=params if i == 0 else [])
    client.set_tag(rid, "mlflow.note.content", f"advaudit verdict {tags['verdict']} for {result.candidate}")
    if out is not None and Path(out).is_dir():
        client.log_artifacts(rid, str(out), ARTIFACT_DIR)
    client.set_terminated(rid)
    return rid
