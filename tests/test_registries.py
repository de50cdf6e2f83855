"""Contract tests over every registry (checks, validity checks, sources, formats, attacks) on one tiny seeded
context: ids match their file and class names, measurements are typed and JSON-serialisable, every policy
threshold names a metric its check really measures, and the skip and error paths work."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from attacks import ATTACKS
from attacks.base import AttackOutput, Norm
from audit.checks import CHECKS, details_types
from audit.checks.validity import VALIDITY_CHECKS, ValidityResult
from audit.config import (
    AttackConfig,
    AuditConfig,
    BackdoorConfig,
    DefenceConfig,
    LabelIssuesConfig,
    LeakageConfig,
    TrainingConfig,
)
from audit.config.policy import load_policy
from audit.core.result import Details, Status
from audit.core.result_schema import results_schema, shipped_schema
from audit.core.serde import to_data
from audit.data.sources import SOURCES
from audit.engine.assemble import assemble
from audit.engine.judge import judge, verdict
from audit.engine.pipeline import build_context, measure_safely, prepare, run_checks
from audit.engine.plan import execution_order
from audit.models import SmallCNN
from reports import FORMATS

ROOT = Path(__file__).resolve().parent.parent
TINY = AuditConfig(
    training=TrainingConfig(epochs=3), candidate="at",
    attacks=AttackConfig(preset="quick", eps=(0.05, 0.1, 0.2), pgd_steps=3, probe_points=32, square_queries=40,
                         square_points=8, art_crosscheck_points=32),
    defences=(DefenceConfig(name="at", method="pgd", eps=0.1, steps=2),),
    label_issues=LabelIssuesConfig(folds=2, epochs=2, retrain_cleaned=True),
    leakage=LeakageConfig(selftest_copies=10), backdoor=BackdoorConfig(selftest_epochs=3),
    checks=tuple(CHECKS))   # the opt-in checks too


def camel(check_id: str) -> str:
    return "".join(p.capitalize() for p in check_id.split("_"))


@pytest.fixture(scope="module")
def tiny(digits):
    """(context, {(check, variant): measurement}, findings) of one seeded run of every check on 300 + 120 digits."""
    data = dataclasses.replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_test=digits.x_test[:120], y_test=digits.y_test[:120])
    ctx = build_context(prepare(TINY, data=data))
    findings = run_checks(ctx)
    return ctx, findings


@pytest.mark.parametrize("check_id", list(CHECKS))
def test_a_checks_id_is_its_file_and_class_name_and_it_declares_what_it_needs(check_id):
    check = CHECKS[check_id]
    assert check.id == check_id
    assert type(check).__name__ == camel(check_id)
    assert inspect.getmodule(type(check)).__name__ == f"audit.checks.{check_id}"
    assert dataclasses.is_dataclass(check.Details) and issubclass(check.Details, Details)
    assert check.Details.__dataclass_params__.frozen
    assert check.scope in ("variant", "data") and check.title and check.description and check.controls
    assert set(check.follows()) <= set(CHECKS) - {check_id}
    assert resources.files("templates").joinpath(f"checks/{check_id}.html.j2").is_file()


def test_checks_run_after_what_they_require():
    order = execution_order(tuple(CHECKS))
    for c in CHECKS.values():
        for need in c.follows():
            assert order.index(need) < order.index(c.id)


@pytest.mark.parametrize("check_id", list(CHECKS))
def test_measurements_are_typed_json_serialisable_and_carry_the_policy_metric(tiny, check_id):
    _ctx, findings = tiny
    policy = load_policy("default")
    mine = [f for f in findings if f.check == check_id]
    assert mine, "the check produced no finding"
    for f in mine:
        assert f.status is not Status.ERROR, f.summary
        if f.status is Status.SKIPPED:
            assert f.summary.startswith("skipped: ") and len(f.summary) > 12
            continue
        assert isinstance(f.details, CHECKS[check_id].Details)
        json.dumps(to_data(f.details), allow_nan=False)
        assert all(isinstance(v, float) and math.isfinite(v) for v in f.metrics.values()), f.metrics
        t = policy.thresholds.get(check_id)
        if t is not None:
            assert t.key in f.metrics, (t.key, sorted(f.metrics))


def test_every_policy_threshold_names_a_registered_check():
    assert set(load_policy("default").thresholds) <= set(CHECKS)


@pytest.mark.parametrize("check_id", list(CHECKS))
def test_a_crashing_check_is_an_error_finding_and_a_missing_requirement_a_skip(tiny, check_id, monkeypatch):
    ctx, _ = tiny
    check = CHECKS[check_id]

    def boom(*_a, **_k):
        raise RuntimeError("simulated")
    monkeypatch.setattr(type(check), "measure", boom)
    monkeypatch.setattr(type(check), "not_applicable", lambda self, c: "", raising=False)
    monkeypatch.setattr(type(check), "requires", ())
    m = measure_safely(check, ctx, "at" if check.scope == "variant" else None)
    f = judge(m, check, None, gating=True)
    assert f.status is Status.ERROR and "RuntimeError: simulated" in f.summary
    assert verdict((f,)).value == "error"
    monkeypatch.setattr(type(check), "requires", (type("NoSuchCheck", (), {"id": "no_such_check"}),))
    m = measure_safely(check, ctx, None)
    assert m.skipped and "no_such_check" in m.skipped


@pytest.mark.parametrize("vid", list(VALIDITY_CHECKS))
def test_a_validity_checks_id_is_its_file(vid):
    c = VALIDITY_CHECKS[vid]
    module = inspect.getmodule(type(c)).__name__.rpartition(".")[2]
    assert c.id == vid and module.startswith(f"c{int(vid[1:]):02d}_") and c.name


def test_every_validity_check_ran_on_every_variant_with_json_values(tiny):
    _ctx, findings = tiny
    for f in findings:
        if f.check != "attack_validity":
            continue
        assert [r.id for r in f.details.validity_checks] == list(VALIDITY_CHECKS)
        for r in f.details.validity_checks:
            assert isinstance(r, ValidityResult) and r.status in ("pass", "warn", "fail", "skipped") and r.evidence
            json.dumps(to_data(r), allow_nan=False)


def test_the_shipped_schema_is_the_one_the_result_model_generates():
    assert shipped_schema() == results_schema(details_types()), "run: python tools/write_schema.py"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_renders_the_tiny_result(tiny, fmt, tmp_path):
    if fmt == "pdf":
        from reports.browser import find_chromium
        if find_chromium() is None:
            pytest.skip("Chromium not installed (run `make browser`)")
    ctx, findings = tiny
    result = assemble(ctx, findings, 1.0)
    out = FORMATS[fmt][1](result)
    assert out and (isinstance(out, (str, bytes)))
    if fmt == "json":
        import jsonschema
        jsonschema.Draft202012Validator(shipped_schema()).validate(json.loads(out))


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_lives_in_its_own_file_and_loads_a_valid_split(name, tmp_path, digits):
    fn = SOURCES[name]
    module = fn.__module__.rpartition(".")[2]
    assert module == ("builtin" if name in ("digits", "digits28", "breast-cancer") else name)
    importlib.import_module(fn.__module__)
    from audit.config import DataConfig, InputConfig
    from audit.data.sources import load_data
    x_tr, y_tr = digits.x_train[:40].numpy(), digits.y_train[:40].numpy()
    x_te, y_te = digits.x_test[:20].numpy(), digits.y_test[:20].numpy()
    kw = {"source": name}
    if name == "npz":
        np.savez(tmp_path / "d.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
        kw["path"] = "d.npz"
    elif name == "npy":
        for k, a in zip(("x_train", "y_train", "x_test", "y_test"), (x_tr, y_tr, x_te, y_te), strict=False):
            np.save(tmp_path / f"{k}.npy", a)
        kw["path"] = "."
    elif name == "folder":
        from PIL import Image
        for split, xs, ys in (("train", x_tr, y_tr), ("test", x_te, y_te)):
            for i, (img, c) in enumerate(zip(xs, ys, strict=False)):
                (tmp_path / split / str(c)).mkdir(parents=True, exist_ok=True)
                Image.fromarray((img[0] * 255).astype(np.uint8)).save(tmp_path / split / str(c) / f"{i}.png")
        kw.update(path=".", channels=1)
    elif name == "table":
        import pandas as pd
        pd.DataFrame(np.c_[x_tr.reshape(40, -1), y_tr], columns=[*map(str, range(64)), "label"]).to_csv(
            tmp_path / "t.csv", index=False)
        kw["path"] = "t.csv"
    elif name == "factory":
        kw["factory"] = "tests.test_registries:tiny_arrays"
    s = load_data(DataConfig(**kw), InputConfig(), tmp_path, seed=0)
    assert s.x_train.shape[0] == len(s.y_train) > 0 and s.x_test.shape[0] == len(s.y_test) > 0
    assert s.y_train.dtype == torch.int64 and s.x_train[:2].dtype == torch.float32
    assert s.num_classes >= 2 and len(s.class_names) == s.num_classes


def tiny_arrays():
    g = torch.Generator().manual_seed(0)
    return torch.rand(30, 1, 8, 8, generator=g), torch.arange(30) % 3, torch.rand(12, 1, 8, 8, generator=g), \
        torch.arange(12) % 3


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L2])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_stays_in_the_ball_and_range_and_leaves_the_model_as_it_was(name, norm, trained_cnn, digits):
    model = SmallCNN()
    model.load_state_dict(trained_cnn.state_dict())
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = digits.x_test[:24], digits.y_test[:24]
    eps = 0.1 if norm is Norm.LINF else 0.8
    settings = {k: v for k, v in dict(steps=3, restarts=1, n_targets=2, queries=50).items()
                if k in ATTACKS[name].param_names}
    out = ATTACKS[name](model, x, y, eps=eps, norm=norm, clip=(0.0, 1.0), generator=torch.Generator().manual_seed(0),
                        **settings)
    assert isinstance(out, AttackOutput) and out.x_adv.shape == x.shape
    assert out.example_passes + out.forward_passes > 0
    d = (out.x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm is Norm.LINF else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
