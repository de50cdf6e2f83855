"""The pipeline: one failing check becomes an ERROR finding and the run goes on; robust accuracy's definition."""
import numpy as np
import pytest
import torch

from audit import checks as checks_pkg
from audit.checks.base import VariantCheck
from audit.config import AttackConfig, AuditConfig, LabelIssuesConfig, TrainingConfig
from audit.core.metrics import WORST_CASE
from audit.core.result import Status, Verdict
from audit.engine.pipeline import run_audit
from audit.methods.evaluation import GridRun, evaluate_robustness


class Exploding(VariantCheck):
    id = "exploding"
    rank = 10_000
    title = "A check that crashes"
    description = "raises"

    def measure(self, ctx, variant):
        raise RuntimeError("simulated failure")


SMALL = dict(training=TrainingConfig(epochs=3), attacks=AttackConfig(eps=(0.05, 0.1), pgd_steps=3),
             label_issues=LabelIssuesConfig(folds=2, epochs=2))


def test_a_crashing_check_becomes_an_error_finding_and_the_run_continues(monkeypatch):
    monkeypatch.setitem(checks_pkg.CHECKS, "exploding", Exploding())
    result = run_audit(AuditConfig(checks=("exploding", "clean_accuracy"), **SMALL))
    by_check = {f.check: f for f in result.findings}
    assert by_check["exploding"].status is Status.ERROR
    assert "RuntimeError: simulated failure" in by_check["exploding"].summary
    assert by_check["clean_accuracy"].status in (Status.PASS, Status.WARN, Status.FAIL)
    assert result.verdict is Verdict.ERROR  # a gating check could not run: no verdict can be claimed
    assert len(result.nist) == 72


def test_robust_accuracy_counts_every_test_point_and_clean_errors_as_failures(trained_cnn, digits):
    x, y = digits.x_test, digits.y_test
    ev = evaluate_robustness(trained_cnn, x, y, GridRun(clip=(0.0, 1.0), device=torch.device("cpu"), seed=0,
                                                        settings=AttackConfig(attacks=("fgsm", "pgd"),
                                                                              eps=(0.05, 0.15), batch_size=128,
                                                                              pgd_steps=5)))
    with torch.no_grad():
        clean_ok = (trained_cnn(x).argmax(1) == y).numpy()
    for (_attack, _eps), mask in ev.correct.items():
        assert mask.shape == (x.shape[0],)               # denominator: all points
        assert not (mask & ~clean_ok).any()              # a clean error is never robust
    for eps in (0.05, 0.15):                             # per-example worst case: mean_x min_attack
        worst = ev.correct[(WORST_CASE, eps)]
        assert np.array_equal(worst, ev.correct[("fgsm", eps)] & ev.correct[("pgd", eps)])
        point = next(p for p in ev.points if p.attack == WORST_CASE and p.eps == eps)
        assert point.robust_accuracy == pytest.approx(worst.mean())
        assert point.robust_accuracy <= min(p.robust_accuracy for p in ev.points if p.eps == eps)
        assert point.ci_low <= point.robust_accuracy <= point.ci_high


def test_per_example_bits_round_trip(trained_cnn, digits):
    from audit.core.metrics import pack_bits, unpack_bits
    mask = np.random.default_rng(0).random(451) > 0.5
    assert np.array_equal(unpack_bits(pack_bits(mask), 451), mask)
    ev = evaluate_robustness(trained_cnn, digits.x_test[:100], digits.y_test[:100],
                             GridRun(clip=(0.0, 1.0), device=torch.device("cpu"), seed=0,
                                     settings=AttackConfig(attacks=("fgsm",), eps=(0.1,), batch_size=64)))
    p = ev.points[0]
    assert np.array_equal(unpack_bits(p.correct_bits, p.n), ev.correct[("fgsm", 0.1)])
