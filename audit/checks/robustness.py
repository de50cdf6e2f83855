"""White-box evasion robustness: every configured attack at every eps, true labels, per-example worst case.

Threat model: white-box (gradients, architecture and weights known), untargeted, the attacker controls test
inputs within an eps-ball of the configured norm inside the valid input range (NIST AI 100-2 §2.2.1).
"""
from __future__ import annotations

from audit.checks.base import controls
from audit.context import Context
from audit.evaluation import WORST_CASE, Accuracy, RobustnessEval, evaluate_robustness
from audit.policy import metric_key
from audit.result import Measurement
from audit.serde import to_data


def robustness_eval(ctx: Context, variant: str) -> RobustnessEval:
    """The attack grid on ``variant`` (cached: several checks and the result table share it)."""
    a = ctx.config.attacks

    def compute():
        return evaluate_robustness(ctx.variants[variant].model, ctx.data.x_test, ctx.data.y_test, settings=a,
                                   clip=ctx.data.attack_clip, device=ctx.device, seed=ctx.config.seed,
                                   num_classes=ctx.data.num_classes, desc=f"attack {variant}")
    return ctx.cached(("robustness", variant), compute)


def gated_eps(ctx: Context) -> float:
    """The policy's robustness-gate eps when the grid has it, else the grid's middle eps."""
    grid = ctx.config.attacks.eps
    gate = ctx.policy.gates.get("robustness")
    if gate is not None and gate.eps is not None:
        match = [e for e in grid if abs(gate.eps - e) < 1e-12]
        if match:
            return match[0]
    return grid[len(grid) // 2]


def per_class(ctx: Context, ev: RobustnessEval) -> list[dict]:
    """Per true class: clean accuracy and worst-case robust accuracy at every eps (Wilson intervals)."""
    y = ctx.data.y_test.numpy()
    rows = []
    names = ctx.data.class_names or tuple(str(k) for k in range(ctx.data.num_classes))
    grid = sorted({p.eps for p in ev.points})
    for k in range(ctx.data.num_classes):
        sel = y == k
        row = {"class": names[k] if k < len(names) else str(k), "n": int(sel.sum()), "robust": {}}
        for e in grid:
            acc = Accuracy.of(ev.correct[(WORST_CASE, e)][sel])
            row["robust"][f"{e:g}"] = {"value": acc.value, "ci_low": acc.ci_low, "ci_high": acc.ci_high}
        rows.append(row)
    return rows


class Robustness:
    id = "robustness"
    title = "Robustness to white-box evasion attacks"
    scope = "variant"
    controls = controls(MEASURE_2_7="direct", MEASURE_2_6="direct", MAP_2_2="direct", MANAGE_1_4="supporting")
    description = ("Robust accuracy (share of all test points still correct under attack, true labels) for every "
                   "attack and eps, and the per-example worst case over the attacks.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        ev = robustness_eval(ctx, variant)
        metrics = {}
        for p in ev.points:
            name = "worst_case_robust_accuracy" if p.attack == WORST_CASE else f"robust_accuracy_{p.attack}"
            metrics[metric_key(name, p.eps)] = p.robust_accuracy
        gate = ctx.policy.gates.get(self.id)
        floor = gate.min if gate is not None and gate.min is not None else None
        worst = [p for p in ev.points if p.attack == WORST_CASE]
        breaking = next((p.eps for p in worst if floor is not None and p.robust_accuracy < floor), None)
        a = ctx.config.attacks
        details = {"points": to_data(ev.points), "breaking_eps": breaking, "policy_floor": floor,
                   "per_class": per_class(ctx, ev), "preset": a.preset,
                   "attack_settings": {name: a.describe(name) for name in a.attacks if name not in ev.skipped},
                   "skipped_attacks": dict(ev.skipped), "early_stop": a.early_stop, "precision": a.precision}
        mid = worst[len(worst) // 2]
        text = (f"worst-case robust accuracy {mid.robust_accuracy:.1%} at {mid.norm} eps {mid.eps:g} "
                f"(95% CI {mid.ci_low:.1%}-{mid.ci_high:.1%})")
        if floor is not None:
            text += f"; falls below the policy floor {floor:.0%} at eps {breaking:g}" if breaking is not None \
                else f"; stays above the policy floor {floor:.0%} over the whole grid"
        return Measurement(check=self.id, variant=variant, metrics=metrics, details=details, summary=text)
