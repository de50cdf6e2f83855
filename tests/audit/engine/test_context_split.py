"""The context is small and built complete: a frozen run setup (the gated eps computed once), model building apart,
and shared results as typed classes computed once per (class, variant), never under string keys."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from audit.checks.run_view import RunView, Shared, TestLogits, TestProbabilities
from audit.config import AuditConfig
from audit.config.policy import load_policy
from audit.engine import run_setup
from audit.engine.context import Context, RunSetup, Variant, make_context
from audit.engine.models import Models
from audit.models.reference import SmallCNN

ROOT = Path(__file__).resolve().parents[3]


class Counted(Shared[int]):
    """A shared result that counts how often it is computed."""

    stage = "counted:{variant}"
    calls: list = []

    @classmethod
    def compute(cls, run, variant):
        cls.calls.append(variant)
        return len(cls.calls)


@pytest.fixture
def setup(digits):
    return RunSetup(config=AuditConfig(), policy=load_policy("default"), data=digits, device=torch.device("cpu"))


@pytest.fixture
def ctx(setup):
    torch.manual_seed(0)
    model = SmallCNN().eval()  # untrained: only the bookkeeping is tested here
    return make_context(setup, {"baseline": Variant("baseline", "b", model, None, None),
                                "other": Variant("other", "o", model, None, None)})


def test_the_context_has_under_12_public_methods():
    tree = ast.parse((ROOT / "audit/engine/context.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Context"]
    public = [n.name for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
              and not any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)]
    assert len(public) < 12, public


def test_a_shared_result_is_computed_once_per_class_and_variant(ctx):
    Counted.calls.clear()
    assert ctx.computed(Counted, "baseline") is None  # nobody asked yet
    first = ctx.get(Counted, "baseline")
    assert ctx.get(Counted, "baseline") == first and ctx.computed(Counted, "baseline") == first
    ctx.get(Counted, "other")
    ctx.get(Counted, "other")
    assert Counted.calls == ["baseline", "other"]
    stages = [s.name for s in ctx.recorder.stages if s is not None]
    assert stages.count("counted:baseline") == 1 and stages.count("counted:other") == 1
    assert all(isinstance(k, tuple) and isinstance(k[0], type) for k in ctx._shared)  # no string keys


def test_derived_results_reuse_the_shared_logits(ctx, monkeypatch):
    calls = []
    original = TestLogits.compute.__func__

    def counting(cls, run, variant):
        calls.append(variant)
        return original(cls, run, variant)
    monkeypatch.setattr(TestLogits, "compute", classmethod(counting))
    probs = ctx.get(TestProbabilities, "baseline")
    ok = ctx.clean_correct("baseline")
    ctx.clean_correct("baseline")
    assert calls == ["baseline"]
    assert probs.shape == (len(ctx.data.y_test), ctx.data.num_classes) and ok.shape == (len(ctx.data.y_test),)


def test_the_setup_is_frozen_and_judges_one_eps_computed_once(setup, ctx, monkeypatch):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setup.config = AuditConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.variants = {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.models.setup = setup
    calls = []
    monkeypatch.setattr(run_setup, "judged_eps", lambda c, p: calls.append(1) or 0.1)
    s = dataclasses.replace(setup)
    assert (s.gated_eps, s.gated_eps) == (0.1, 0.1) and calls == [1]
    assert setup.gated_eps in setup.config.attacks.eps and ctx.gated_eps == setup.gated_eps


def test_the_context_is_what_checks_see_and_builds_models(ctx):
    members = [m for m in dir(RunView) if not m.startswith("_")] + list(RunView.__annotations__)
    assert all(hasattr(ctx, m) for m in members), [m for m in members if not hasattr(ctx, m)]
    assert isinstance(ctx.models, Models) and isinstance(ctx, Context)
    copy = ctx.models.copy_model(ctx.variants["baseline"])
    assert copy is not ctx.variants["baseline"].model
