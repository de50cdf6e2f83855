"""Every bad argument of ``audit.run`` raises ``audit.UsageError`` (one line, naming the argument) before any work;
the documented uses of ``**changes`` still work."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import audit
import audit.engine.pipeline  # noqa: F401 - imported here so the timing below measures the checks, not the import
from audit.config.threat import ThreatModelConfig
from audit.engine import configure
from audit.models.reference import SmallCNN

CHEAP = {"threat_model": {"eps": 0.1}, "checks": ["input_validation", "clean_accuracy"]}
CHEAP_TOML = 'checks = ["input_validation", "clean_accuracy"]\n\n[threat_model]\neps = 0.1\n'


@pytest.fixture(scope="module")
def arrays(digits):
    """A small subset: 200 train and 100 test rows of the 8x8 digits."""
    return {"x_train": digits.x_train[:200].numpy(), "y_train": digits.y_train[:200].numpy(),
            "x_test": digits.x_test[:100].numpy(), "y_test": digits.y_test[:100].numpy()}


def no_work(*_a, **_k):
    raise AssertionError("a bad argument reached the pipeline")


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr("audit.engine.pipeline.run_audit_with_context", no_work)
    monkeypatch.setattr("audit.engine.pipeline.train_variants", no_work)
    monkeypatch.setattr("audit.methods.jobs.train", no_work)


def deep_dict(depth: int) -> dict:
    top = node = {}
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return {"data": {"kwargs": top}}


def user_folder(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("the user's own file", encoding="utf-8")
    return d


def toml_file(tmp_path, text):
    p = tmp_path / "advaudit.toml"
    p.write_text(text, encoding="utf-8")
    return p


# (id, kwargs from (arrays, tmp_path), a fragment of the message: the argument's name and what is wrong)
CASES = [
    ("data-list", lambda a, t: dict(data=list(a.values())), "data: give a dict of arrays"),
    ("data-str", lambda a, t: dict(data="digits"), "data: give a dict of arrays"),
    ("data-unknown-key", lambda a, t: dict(data=dict(a, x_tset=a["x_test"])), "data: unknown key 'x_tset'"),
    ("data-missing-key", lambda a, t: dict(data={k: v for k, v in a.items() if k != "y_train"}), "y_train"),
    ("data-none-value", lambda a, t: dict(data=dict(a, y_train=None)), "data: the arrays lack y_train"),
    ("data-list-value", lambda a, t: dict(data=dict(a, x_train=a["x_train"].tolist())),
     "data['x_train']: give a numpy array or a torch tensor, not list"),
    ("data-str-value", lambda a, t: dict(data=dict(a, y_test="labels")), "data['y_test']"),
    ("data-val-alone", lambda a, t: dict(data=dict(a, x_val=a["x_test"])), "x_val and y_val"),
    ("data-non-str-key", lambda a, t: dict(data={**a, 3: a["x_test"]}), "data: unknown key 3"),
    ("model-lambda", lambda a, t: dict(model=lambda x: x), "model: give a torch.nn.Module"),
    ("model-str", lambda a, t: dict(model="resnet18"), "model: give a torch.nn.Module (already trained), not str"),
    ("model-class", lambda a, t: dict(model=SmallCNN), "model: give a torch.nn.Module instance"),
    ("config-int", lambda a, t: dict(config=3),
     "config: give a TOML path, a dict shaped like the TOML, or an AuditConfig, not int"),
    ("config-list", lambda a, t: dict(config=[CHEAP]), "not list"),
    ("config-missing-file", lambda a, t: dict(config=t / "absent.toml"), "config file not found"),
    ("config-missing-str", lambda a, t: dict(config=str(t / "absent.toml")), "config file not found"),
    ("config-nul", lambda a, t: dict(config="a\0b.toml"), "config: the path contains a NUL byte"),
    ("config-100000-deep", lambda a, t: dict(config=deep_dict(100_000)), "config: nested more than 32 levels"),
    ("config-33-deep", lambda a, t: dict(config=deep_dict(30)), "the limit is 32"),
    ("config-cycle", lambda a, t: dict(config=(lambda c: (c.__setitem__("data", c), c)[1])({})), "nested more than"),
    ("config-int-key", lambda a, t: dict(config={1: 2, "seed": 3}), "config: key 1 is not a string"),
    ("config-toml-100000-deep", lambda a, t: dict(config=toml_file(t, "x = " + "[" * 100_000 + "]" * 100_000)),
     "config file"),
    ("config-toml-40-deep", lambda a, t: dict(config=toml_file(t, "[data.kwargs]\nx = " + "[" * 40 + "]" * 40)),
     "nested more than 32 levels"),
    ("config-unknown-key", lambda a, t: dict(config={"seedd": 1}), "seedd: unknown key"),
    ("changes-unknown-keyword", lambda a, t: dict(config=CHEAP, seedd=1), "seedd: not an argument of audit.run"),
    ("changes-unknown-names-the-valid", lambda a, t: dict(config=CHEAP, outt="x"), "valid: config, model, data"),
    ("changes-seed-str", lambda a, t: dict(config=CHEAP, seed="x"), "seed: expected an integer, got 'x'"),
    ("changes-seed-negative", lambda a, t: dict(config=CHEAP, seed=-1), "seed: -1 must be an integer"),
    ("changes-seed-str-auditconfig", lambda a, t: dict(config=configure.from_mapping(CHEAP), seed="x"),
     "seed: expected an integer"),
    ("changes-seed-str-toml", lambda a, t: dict(config=toml_file(t, CHEAP_TOML), seed="x"),
     "seed: expected an integer"),
    ("changes-candidate", lambda a, t: dict(config=CHEAP, candidate="nope"), "candidate: 'nope' is not a variant"),
    ("changes-section-type", lambda a, t: dict(config=CHEAP, threat_model=0.1),
     "threat_model: expected a table, got float"),
    ("changes-deep", lambda a, t: dict(config=CHEAP, training=deep_dict(100_000)), "nested more than 32"),
    ("mlflow-int", lambda a, t: dict(mlflow=123), "mlflow: give True, False or a tracking URI (a str), not int"),
    ("mlflow-list", lambda a, t: dict(mlflow=["file:///tmp"]), "mlflow: give True, False"),
    ("mlflow-bad-scheme", lambda a, t: dict(mlflow="ftp://host/runs"), "mlflow: 'ftp://host/runs': scheme 'ftp'"),
    ("mlflow-no-host", lambda a, t: dict(mlflow="http://"), "mlflow: 'http://' names no host"),
    ("mlflow-config-uri",
     lambda a, t: dict(config={**CHEAP, "tracking": {"mlflow": True, "tracking_uri": "sqlite://"}}),
     "tracking.tracking_uri: 'sqlite://'"),
    ("mlflow-true-config-uri",
     lambda a, t: dict(mlflow=True, config={**CHEAP, "tracking": {"tracking_uri": "ftp://x"}}),
     "tracking.tracking_uri: 'ftp://x'"),
    ("factory-no-module", lambda a, t: dict(factory="nope.module:fn"), "factory: cannot import module 'nope.module'"),
    ("factory-no-colon", lambda a, t: dict(factory="no_colon"), "factory: 'no_colon' must have the form"),
    ("factory-no-attribute", lambda a, t: dict(factory="audit.models:nope"), "factory: module 'audit.models' has no"),
    ("factory-not-callable", lambda a, t: dict(factory="audit.config.load:MAX_CONFIG_DEPTH"), "is not callable"),
    ("factory-int", lambda a, t: dict(factory=7), "factory: give 'package.module:function' (a str), not int"),
    ("out-user-folder", lambda a, t: dict(out=user_folder(t)), "out"),
    ("out-file", lambda a, t: dict(out=toml_file(t, "")), "exists and is not a directory"),
    ("out-int", lambda a, t: dict(out=5), "out: give the output directory as a str or a pathlib.Path, not int"),
    ("base-dir-int", lambda a, t: dict(base_dir=5), "base_dir: give"),
    ("base-dir-missing", lambda a, t: dict(base_dir=t / "nowhere"), "base_dir: not a directory"),
]


@pytest.mark.parametrize("make, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_argument_raises_a_one_line_usage_error_before_any_work(make, fragment, arrays, tmp_path,
                                                                       no_training):
    kwargs = dict(model=SmallCNN().eval(), data=arrays, config=CHEAP)
    kwargs.update(make(arrays, tmp_path))
    if "mlflow" in fragment or "tracking" in fragment:
        pytest.importorskip("mlflow")  # its import (seconds) is not the check being timed
    start = time.perf_counter()
    with pytest.raises(audit.UsageError) as e:
        audit.run(**kwargs)
    assert time.perf_counter() - start < 3.0
    message = str(e.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 600


def test_the_nesting_limit_is_32_levels(tmp_path):
    from audit.config.load import config_from_data
    cfg = config_from_data(deep_dict(29), tmp_path)  # the file, data, kwargs and 29 tables: 32 levels
    assert "a" in cfg.data.kwargs
    with pytest.raises(audit.UsageError, match="nested more than 32 levels"):
        config_from_data(deep_dict(30), tmp_path)


def test_a_usage_error_from_the_pipeline_passes_through_unchanged(arrays, monkeypatch):
    error = audit.UsageError("model: raised deep inside")

    def fails(*_a, **_k):
        raise error

    monkeypatch.setattr("audit.engine.pipeline.run_audit_with_context", fails)
    with pytest.raises(audit.UsageError) as e:
        audit.run(model=SmallCNN().eval(), data=arrays, config=CHEAP)
    assert e.value is error


def test_changes_are_loaded_like_the_toml_and_tensors_are_accepted(arrays, monkeypatch):
    seen = {}

    def capture(cfg, data=None, model=None, **_):
        seen.update(cfg=cfg, splits=data, model=model)
        raise audit.UsageError("captured")

    monkeypatch.setattr("audit.engine.pipeline.run_audit_with_context", capture)
    data = {k: torch.from_numpy(v) for k, v in arrays.items()}
    data["x_train"] = data["x_train"].clone().requires_grad_(True)
    for config in (CHEAP, configure.from_mapping(CHEAP)):
        with pytest.raises(audit.UsageError, match="captured"):
            audit.run(config, model=SmallCNN().eval(), data=data, seed=np.int64(1), candidate="baseline",
                      threat_model=ThreatModelConfig(eps=0.05), factory="audit.models:build_small_cnn")
        cfg = seen["cfg"]
        assert cfg.seed == 1 and cfg.candidate == "baseline" and cfg.threat_model.eps == 0.05
        assert cfg.model.factory == "audit.models:build_small_cnn" and seen["model"].trainable
        assert cfg.checks == ("input_validation", "clean_accuracy") and cfg.base_dir
        assert seen["splits"].x_train.shape == (200, 1, 8, 8) and not seen["splits"].x_train.requires_grad


@pytest.mark.parametrize("form", ["dict", "AuditConfig", "toml"])
def test_a_valid_call_with_seed_1_still_runs(form, arrays, tmp_path):
    config = {"dict": CHEAP, "AuditConfig": configure.from_mapping(CHEAP),
              "toml": toml_file(tmp_path, CHEAP_TOML)}[form]
    result = audit.run(config, model=SmallCNN().eval(), data=arrays, seed=1, candidate="baseline",
                       out=tmp_path / "out")
    assert result.verdict in ("NO-GO", "INCOMPLETE") and result.evidence_gaps  # narrowed checks: never GO
    assert result.result.config["seed"] == 1 and result.candidate == "baseline"
    assert {"input_validation", "clean_accuracy:baseline"} <= set(result.findings_table()["id"])
    assert (tmp_path / "out" / "results.json").is_file()
