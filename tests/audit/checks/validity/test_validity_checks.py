"""Validity checks C1-C16: every check is made to fail (or warn) by a broken model or evaluation, and passes on a
healthy, naturally trained model. Fixtures: the seeded SmallCNN, a gradient-masked copy (a non-differentiable
input quantiser), a stochastic copy, a softmax copy and a batch-dependent copy."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attacks.training import TrainStats
from audit.checks.validity import VALIDITY_CHECKS, Probe, ValidityResult
from audit.config import AttackConfig, DefenceConfig
from audit.core.metrics import RobustnessPoint
from audit.core.result import Status
from audit.methods.evaluation import GridRun, RobustnessEval, ValidityStats, evaluate_robustness

N = 120
QUICK = AttackConfig(preset="quick", eps=(0.05, 0.1, 0.2), probe_points=N, pgd_steps=20, pgd_restarts=2,
                     square_queries=200, square_points=48)


class Wrapped(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner


class Quantised(Wrapped):
    """Rounds inputs to the digits' 1/16 grid: clean accuracy unchanged, input gradient zero everywhere."""

    def forward(self, x):
        return self.inner(torch.round(x * 16) / 16)


class Stochastic(Wrapped):
    def forward(self, x):
        return self.inner(F.dropout(x, 0.3, training=True))


class Softmax(Wrapped):
    def forward(self, x):
        return F.softmax(self.inner(x), 1)


class BatchDependent(Wrapped):
    def forward(self, x):
        return self.inner(x - x.mean(0, keepdim=True) + 0.3)


class StuckInTraining(Wrapped):
    def train(self, mode=True):
        super().train(mode)
        self.inner.train(True)  # a custom module that ignores eval()
        return self

    def forward(self, x):
        return self.inner(x)


def make_probe(model, digits, settings=QUICK, **kw) -> Probe:
    x, y = digits.x_test[:N], digits.y_test[:N]
    grid = kw.pop("grid", None) or evaluate_robustness(model, x, y, GridRun(settings=settings, clip=(0.0, 1.0),
                                                                            device=torch.device("cpu"), seed=0,
                                                                            num_classes=10))
    return Probe(model=model, grid=grid, settings=settings, idx=np.arange(N), x=x, y=y, clip=(0.0, 1.0),
                 device=torch.device("cpu"), num_classes=10, seed=0, eps=0.1, range_width=1.0, **kw)


@pytest.fixture(scope="module")
def healthy(trained_cnn, digits):
    return make_probe(trained_cnn, digits)


@pytest.fixture(scope="module")
def masked(trained_cnn, digits):
    return make_probe(Quantised(trained_cnn).eval(), digits)


def with_points(probe, edit) -> Probe:
    """A copy of ``probe`` whose grid points are edited by ``edit(point) -> point``."""
    grid = dataclasses.replace(probe.grid, points=tuple(edit(p) for p in probe.grid.points))
    return dataclasses.replace(probe, grid=grid, _cache={})


@pytest.mark.parametrize("gid", ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C12", "C13", "C15"])
def test_every_validity_check_passes_on_a_healthy_model(healthy, gid):
    r = VALIDITY_CHECKS[gid].evaluate(healthy)
    assert r.status == "pass", r.evidence
    assert r.id == gid and r.evidence


def test_c1_fails_when_accuracy_rises_with_eps(healthy):
    bad = with_points(healthy, lambda p: dataclasses.replace(p, robust_accuracy=0.9) if p.eps == 0.2 else p)
    r = VALIDITY_CHECKS["C1"].evaluate(bad)
    assert r.status == "fail" and "eps 0.1 ->" in r.evidence


def test_c2_fails_when_pgd_is_weaker_than_fgsm(healthy):
    bad = with_points(healthy, lambda p: dataclasses.replace(p, robust_accuracy=0.99) if p.attack == "pgd" else p)
    assert VALIDITY_CHECKS["C2"].evaluate(bad).status == "fail"


def test_c3_flags_an_attack_that_has_not_converged(trained_cnn, digits):
    weak = AttackConfig(attacks=("pgd",), eps=(0.1,), pgd_steps=1, pgd_restarts=1, probe_points=N)
    r = VALIDITY_CHECKS["C3"].evaluate(make_probe(trained_cnn, digits, weak))
    assert r.status in ("warn", "fail"), r.evidence
    assert r.values["stronger"] < r.values["grid"]


def test_gradient_masking_fails_c4_c6_and_c7(masked):
    with torch.no_grad():
        assert (masked.model(masked.x).argmax(1) == masked.y).float().mean() > 0.9  # clean accuracy intact
    c4, c6, c7 = (VALIDITY_CHECKS[c].evaluate(masked) for c in ("C4", "C6", "C7"))
    assert c7.status == "fail" and c7.values["zero_gradient"] > 0.9
    assert c4.status == "fail" and c4.values["accuracy"] > 0.5
    assert c6.status == "fail" and c6.values["broken_only_by_square"] >= 2


def test_c5_fails_when_the_attack_does_nothing(healthy):
    grid = healthy.grid
    correct = {k: (np.ones_like(v) if k[0] == "worst_case" else v) for k, v in grid.correct.items()}
    bad = dataclasses.replace(healthy, grid=dataclasses.replace(grid, correct=correct), _cache={})
    r = VALIDITY_CHECKS["C5"].evaluate(bad)
    assert r.status == "fail" and "noise" in r.evidence


@pytest.mark.parametrize("wrapper,fragment", [(Stochastic, "stochastic"), (BatchDependent, "batch"),
                                               (StuckInTraining, "train mode")])
def test_c8_fails_on_stochastic_batch_dependent_or_train_mode_models(trained_cnn, digits, healthy, wrapper,
                                                                     fragment):
    model = wrapper(trained_cnn)
    probe = dataclasses.replace(healthy, model=model, _cache={})
    r = VALIDITY_CHECKS["C8"].evaluate(probe)
    trained_cnn.eval()
    assert r.status == "fail" and fragment in r.evidence


def test_c9_fails_on_a_model_that_returns_probabilities(healthy, trained_cnn):
    r = VALIDITY_CHECKS["C9"].evaluate(dataclasses.replace(healthy, model=Softmax(trained_cnn).eval(), _cache={}))
    assert r.status == "fail" and "probability" in r.evidence


def test_c10_fails_on_perturbations_outside_the_ball_or_range(healthy):
    grid = dataclasses.replace(healthy.grid, validity=ValidityStats(1.5, 3, 1))
    r = VALIDITY_CHECKS["C10"].evaluate(dataclasses.replace(healthy, grid=grid))
    assert r.status == "fail" and "factor 1.5" in r.evidence and "NaN" in r.evidence


def test_c11_passes_on_a_broken_reference_warns_on_a_robust_one_and_skips_without(healthy):
    c11 = VALIDITY_CHECKS["C11"]
    assert c11.evaluate(dataclasses.replace(healthy, reference=("baseline", healthy.grid))).status == "pass"
    robust = with_points(healthy, lambda p: dataclasses.replace(p, robust_accuracy=0.6))
    assert c11.evaluate(dataclasses.replace(healthy, reference=("baseline", robust.grid))).status == "warn"
    assert VALIDITY_CHECKS["C11"].evaluate(healthy).status == "skipped"


def test_c12_fails_when_the_worst_case_is_above_a_member(healthy):
    correct = dict(healthy.grid.correct)
    correct[("fgsm", 0.1)] = np.zeros_like(correct[("fgsm", 0.1)])
    bad = dataclasses.replace(healthy, grid=dataclasses.replace(healthy.grid, correct=correct))
    assert VALIDITY_CHECKS["C12"].evaluate(bad).status == "fail"


@pytest.mark.parametrize("eps,status", [(8.0, "fail"), (0.6, "warn"), (0.2, "pass")])
def test_c13_eps_units(healthy, eps, status):
    probe = with_points(healthy, lambda p: dataclasses.replace(p, eps=eps) if p.eps == 0.2 else p)
    assert VALIDITY_CHECKS["C13"].evaluate(probe).status == status


@pytest.mark.parametrize("history,stopped,status", [((0.5, 0.6, 0.62), "", "pass"), ((0.5, 0.6, 0.3), "", "fail"),
                                                     ((0.5, 0.6), "catastrophic overfitting at epoch 3", "warn")])
def test_c14_catastrophic_overfitting(healthy, history, stopped, status):
    stats = TrainStats(seconds=1.0, epochs=len(history), example_passes=1, stopped_early=stopped,
                       guard_history=history)
    probe = dataclasses.replace(healthy, training=stats, defence=DefenceConfig(name="f", method="fgsm_rs", eps=0.1))
    assert VALIDITY_CHECKS["C14"].evaluate(probe).status == status
    assert VALIDITY_CHECKS["C14"].evaluate(healthy).status == "skipped"


def test_c15_fails_when_the_labels_are_not_the_datasets(healthy):
    not_dataset = dataclasses.replace(healthy, labels_are_dataset_labels=False)
    assert VALIDITY_CHECKS["C15"].evaluate(not_dataset).status == "fail"


def test_a_gradient_masked_model_gets_a_failing_validity_finding(trained_cnn, digits, masked):
    from audit.checks.attack_validity import run_validity_checks
    from audit.checks.validity import worst
    results = run_validity_checks(masked)
    assert worst(results) == "fail"
    assert {"C4", "C6", "C7"} <= {r.id for r in results if r.status == "fail"}


def test_c16_fails_when_fgsm_is_far_above_the_strongest_iterative_attack(healthy):
    ok = VALIDITY_CHECKS["C16"].evaluate(healthy)
    assert ok.status == "pass" and ok.values["max_gap"] <= 0.2
    bad = with_points(healthy, lambda p: dataclasses.replace(p, robust_accuracy=0.75)
                      if p.attack == "fgsm" and p.eps == 0.2 else p)
    r = VALIDITY_CHECKS["C16"].evaluate(bad)
    assert r.status == "fail" and "eps 0.2" in r.evidence and "catastrophic overfitting" in r.evidence
    only_fgsm = dataclasses.replace(healthy, settings=dataclasses.replace(QUICK, attacks=("fgsm",)),
                                    grid=dataclasses.replace(healthy.grid, points=tuple(
                                        p for p in healthy.grid.points if p.attack == "fgsm")))
    assert VALIDITY_CHECKS["C16"].evaluate(only_fgsm).status == "skipped"


# --- diagnoses (issue 27): each check names the right cause -------------------------------------------------------

def synthetic_grid(masks: dict) -> RobustnessEval:
    """A grid from per-example masks {(attack, eps): bool array}, with the per-example worst case."""
    correct = dict(masks)
    for eps in sorted({e for _, e in masks}):
        correct[("worst_case", eps)] = np.logical_and.reduce([m for (a, e), m in masks.items() if e == eps])
    points = tuple(RobustnessPoint.of(a, "linf", e, m, 0) for (a, e), m in correct.items())
    return RobustnessEval(points=points, correct=correct, validity=ValidityStats(1.0, 0, 0))


def rising_worst_case(rise: int, n: int = 1000) -> RobustnessEval:
    """PGD (and so the worst case) keeps 962 of ``n`` points at eps 0.3 and those plus ``rise`` more at 0.375."""
    at_small = np.zeros(n, bool)
    at_small[:962] = True
    at_large = at_small.copy()
    at_large[962:962 + rise] = True
    clean = np.zeros(n, bool)
    clean[:990] = True
    return synthetic_grid({("fgsm", 0.3): clean, ("pgd", 0.3): at_small, ("fgsm", 0.375): clean,
                           ("pgd", 0.375): at_large})


def test_c1_warns_when_the_worst_case_rises_by_two_points_of_a_thousand(healthy):
    r = VALIDITY_CHECKS["C1"].evaluate(dataclasses.replace(healthy, grid=rising_worst_case(2)))
    assert r.status == "warn", r.evidence                 # inside the policy's 1% tolerance: passed before
    assert "96.2% at eps 0.3 -> 96.4% at eps 0.375" in r.evidence and "2 point(s)" in r.evidence
    assert r.values["reversals"]["worst_case 0.3->0.375"] == 2


def test_c1_judges_a_rise_against_the_paired_interval_not_only_the_policy_tolerance(healthy):
    r = VALIDITY_CHECKS["C1"].evaluate(dataclasses.replace(healthy, grid=rising_worst_case(8)))
    assert r.status == "fail", r.evidence                 # 0.8% < 1%, but 8 reversals and no forwards: no noise
    assert "8 of 1000 points broken at eps 0.3 survive at 0.375" in r.evidence
    n = 1000
    noisy_lo, noisy_hi = np.zeros(n, bool), np.zeros(n, bool)
    noisy_lo[:500], noisy_hi[5:508] = True, True           # FGSM rises 3 points: 8 reversals, 5 forwards: noise
    worst = np.zeros(n, bool)
    worst[:400] = True
    ok = synthetic_grid({("fgsm", 0.3): noisy_lo, ("fgsm", 0.375): noisy_hi, ("pgd", 0.3): worst,
                         ("pgd", 0.375): worst & (np.arange(n) < 390)})
    r = VALIDITY_CHECKS["C1"].evaluate(dataclasses.replace(healthy, grid=ok))
    assert r.status == "pass", r.evidence


def test_c6_names_non_convergence_when_c3_found_the_white_box_attacks_unconverged(healthy):
    from audit.checks.validity.c06_black_box import white_box_robust
    wb = white_box_robust(healthy, healthy.eps)
    square = wb.copy()
    square[np.flatnonzero(wb)[:5]] = False                 # Square breaks 5 points every white-box attack missed
    grid = dataclasses.replace(healthy.grid, correct={**healthy.grid.correct, ("square", healthy.eps): square})
    probe = dataclasses.replace(healthy, grid=grid, results={})
    masking = VALIDITY_CHECKS["C6"].evaluate(probe)
    assert masking.status == "fail" and "(gradient masking)" in masking.evidence
    assert masking.values["cause"] == "gradient masking"
    c3 = ValidityResult("C3", "convergence", Status.WARN, "not converged", {"drop": 0.04})
    r = VALIDITY_CHECKS["C6"].evaluate(dataclasses.replace(probe, results={"C3": c3}))
    assert "had not converged (C3" in r.evidence and "raise steps/restarts" in r.evidence, r.evidence
    assert "(gradient masking)" not in r.evidence and r.values["cause"] == "not converged"


def fgsm_above_pgd(probe, fgsm: float, iterative: float, eps: float = 0.2) -> Probe:
    """``probe`` with FGSM at ``fgsm`` and every other attack (the worst case too) at ``iterative`` at ``eps``."""
    return with_points(probe, lambda p: p if p.eps != eps else dataclasses.replace(
        p, robust_accuracy=fgsm if p.attack == "fgsm" else iterative))


def test_c16_passes_the_ordinary_fgsm_pgd_gap_of_a_natural_model(healthy):
    """The reported misfire: a naturally trained model, FGSM 53.8% vs PGD 27.2%: FGSM itself is far below clean."""
    natural = dataclasses.replace(fgsm_above_pgd(healthy, 0.538, 0.272),
                                  training=TrainStats(seconds=1.0, epochs=8, example_passes=1))
    r = VALIDITY_CHECKS["C16"].evaluate(natural)
    assert r.status == "pass", r.evidence
    assert "ordinary gap of a non-robust model" in r.evidence and "FGSM is a weaker attack" in r.evidence
    assert "iterative number is the one that counts" in r.evidence and "catastrophic" not in r.evidence
    assert r.values["diagnosis"] == "ordinary gap" and r.values["clean"] > 0.9


def test_c16_names_the_single_step_signature_by_how_the_variant_was_trained(healthy):
    trap = fgsm_above_pgd(healthy, 0.75, 0.03)              # FGSM near clean, PGD near zero
    trained_here = dataclasses.replace(trap, training=TrainStats(seconds=1.0, epochs=8, example_passes=1))
    masking = VALIDITY_CHECKS["C16"].evaluate(trained_here)
    assert masking.status == "fail" and "single-step gradient masking" in masking.evidence
    assert "catastrophic" not in masking.evidence
    fgsm_trained = DefenceConfig(name="f", method="fgsm_rs", eps=0.2)
    overfit = VALIDITY_CHECKS["C16"].evaluate(dataclasses.replace(trained_here, defence=fgsm_trained))
    assert overfit.status == "fail" and "catastrophic overfitting" in overfit.evidence
    assert "gradient masking" not in overfit.evidence and overfit.values["diagnosis"] == "catastrophic overfitting"
    # single-step trained: even a gap where FGSM itself is far below clean is the overfitting signature
    ordinary = dataclasses.replace(fgsm_above_pgd(healthy, 0.538, 0.272), defence=fgsm_trained)
    assert VALIDITY_CHECKS["C16"].evaluate(ordinary).status == "fail"


class _Run:
    """The part of the run ``declared_reference`` reads: the config, the variants and the shared grids."""

    def __init__(self, training: str, variants: dict):
        from audit.config import AuditConfig, ModelConfig
        self.config = dataclasses.replace(AuditConfig(), model=ModelConfig(weights="m.safetensors",
                                                                           training=training))
        self.variants = variants

    def get(self, kind, variant):
        return f"grid of {variant}"


def test_c11_uses_a_supplied_baseline_declared_natural_and_says_how_to_declare_it(trained_cnn):
    from audit.checks.validity.c11_reference import declared_reference
    from audit.engine.models import Variant
    supplied = {"baseline": Variant("baseline", "the model as supplied", trained_cnn, None, None)}
    assert declared_reference(_Run("natural", supplied)) == (("baseline", "grid of baseline"), "")
    none, why = declared_reference(_Run("unknown", supplied))
    assert none is None and 'training = "natural"' in why and "[model]" in why
    assert "adversarially trained" in declared_reference(_Run("adversarial", supplied))[1]
    checkpoint = Variant("plain", "", trained_cnn, DefenceConfig(name="plain", method="none", weights="p.pt"), None)
    assert declared_reference(_Run("unknown", {**supplied, "plain": checkpoint}))[0] == ("plain", "grid of plain")


def test_model_training_is_validated_with_the_valid_values():
    from audit.config import ModelConfig
    from audit.core.errors import UsageError
    ModelConfig(training="natural").validate("model")
    with pytest.raises(UsageError, match=r"model\.training: 'robust' is not valid; valid: 'natural', 'adversarial'"):
        ModelConfig(training="robust").validate("model")
