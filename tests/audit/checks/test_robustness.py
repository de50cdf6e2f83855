"""robustness: every attack at every eps, the per-example worst case, and the breaking eps under the policy."""
from __future__ import annotations

from audit.checks import CHECKS
from audit.config.policy import Threshold
from audit.core.metrics import WORST_CASE, metric_key
from audit.core.result import Status
from audit.engine.judge import judge


def test_metrics_cover_the_grid_and_the_worst_case_is_the_lowest(small_ctx):
    m = CHECKS["robustness"].measure(small_ctx, "baseline")
    for eps in small_ctx.config.attacks.eps:
        worst = m.metrics[metric_key("worst_case_robust_accuracy", eps)]
        per_attack = [v for k, v in m.metrics.items() if k.startswith("robust_accuracy_") and k.endswith(f"@{eps:g}")]
        assert per_attack and worst <= min(per_attack)
    assert m.details.policy_floor is None and m.details.breaking_eps is None   # measure knows no policy


def test_the_judge_adds_the_breaking_eps_from_the_policy_floor(small_ctx):
    check = CHECKS["robustness"]
    m = check.measure(small_ctx, "baseline")
    worst = [p for p in m.details.points if p.attack == WORST_CASE]
    floor = (worst[0].robust_accuracy + worst[-1].robust_accuracy) / 2 + 1e-9
    t = Threshold("worst_case_robust_accuracy", eps=small_ctx.gated_eps, min=floor)
    f = judge(m, check, t, gating=True)
    expected = next((p.eps for p in worst if p.robust_accuracy < floor), None)
    assert f.details.breaking_eps == expected and f.details.policy_floor == floor
    assert "policy floor" in f.summary and "policy floor" not in m.summary
    never = judge(m, check, Threshold("worst_case_robust_accuracy", eps=small_ctx.gated_eps, min=0.0), True)
    assert never.details.breaking_eps is None and "stays above" in never.summary and never.status is Status.PASS
