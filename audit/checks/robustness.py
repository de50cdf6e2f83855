"""White-box evasion robustness: every configured attack at every eps, true labels, per-example worst case.

Threat model: white-box (gradients, architecture and weights known), untargeted, the attacker controls test
inputs within an eps-ball of the configured norm inside the valid input range (NIST AI 100-2 §2.2.1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.run_view import RobustnessGrid
from audit.config.policy import Threshold
from audit.core.metrics import WORST_CASE, Accuracy, RobustnessPoint, metric_key, same_eps
from audit.core.result import Details, Measurement


@dataclass(frozen=True)
class Interval:
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ClassRobustness:
    """One true class: its test points and worst-case robust accuracy at every eps ("%g" of the eps -> value)."""

    label: str
    n: int
    robust: dict[str, Interval]


@dataclass(frozen=True)
class RobustnessDetails(Details):
    points: tuple[RobustnessPoint, ...]
    gated_eps: float                    # the eps the policy judges (else the grid's middle one)
    breaking_eps: float | None          # the first eps where worst-case robust accuracy falls below the floor
    policy_floor: float | None          # the robustness threshold's min, if any
    per_class: tuple[ClassRobustness, ...]
    preset: str
    attack_settings: dict[str, str]     # attack -> "PGD, 20 steps x 1 restart(s), ..." as run
    skipped_attacks: dict[str, str]     # attack -> why it could not run on this model
    early_stop: bool
    precision: str


def per_class(ctx: AuditContext, ev) -> tuple[ClassRobustness, ...]:
    """Per true class: worst-case robust accuracy at every eps (Wilson intervals)."""
    y = ctx.data.y_test.numpy()
    names = ctx.data.class_names or tuple(str(k) for k in range(ctx.data.num_classes))
    grid = sorted({p.eps for p in ev.points})
    rows = []
    for k in range(ctx.data.num_classes):
        sel = y == k
        robust = {}
        for e in grid:
            acc = Accuracy.of(ev.correct[(WORST_CASE, e)][sel])
            robust[f"{e:g}"] = Interval(acc.value, acc.ci_low, acc.ci_high)
        rows.append(ClassRobustness(label=names[k] if k < len(names) else str(k), n=int(sel.sum()), robust=robust))
    return tuple(rows)


@register
class Robustness(VariantCheck):
    id = "robustness"
    rank = 40
    title = "Robustness to white-box evasion attacks"
    controls = controls(MEASURE_2_7="direct", MEASURE_2_6="direct", MAP_2_2="direct", MANAGE_1_4="supporting")
    description = ("Robust accuracy (share of all test points still correct under attack, true labels) for every "
                   "attack and eps, and the per-example worst case over the attacks.")
    Details = RobustnessDetails

    def cost(self, sheet: CostSheet, variant: str) -> None:
        fb, fwd, per_row = sheet.attack_sweep()
        sheet.add(f"check {self.id}:{variant}", fb, fwd + sheet.n_test, fwd_cost=per_row)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        ev = ctx.get(RobustnessGrid, variant)
        metrics = {}
        for p in ev.points:
            name = "worst_case_robust_accuracy" if p.attack == WORST_CASE else f"robust_accuracy_{p.attack}"
            metrics[metric_key(name, p.eps)] = p.robust_accuracy
        worst = [p for p in ev.points if p.attack == WORST_CASE]
        a = ctx.config.attacks
        details = RobustnessDetails(
            points=ev.points, gated_eps=ctx.gated_eps, breaking_eps=None, policy_floor=None,
            per_class=per_class(ctx, ev), preset=a.preset,
            attack_settings={name: a.describe(name) for name in a.attacks if name not in ev.skipped},
            skipped_attacks=dict(ev.skipped), early_stop=a.early_stop, precision=a.precision)
        gated = ctx.gated_eps
        mid = next(p for p in worst if same_eps(p.eps, gated))
        text = (f"worst-case robust accuracy {mid.robust_accuracy:.1%} at {mid.norm} eps {mid.eps:g} "
                f"(95% CI {mid.ci_low:.1%}-{mid.ci_high:.1%})")
        return Measurement(check=self.id, variant=variant, metrics=metrics, details=details, summary=text)

    def with_threshold(self, m: Measurement, threshold: Threshold | None) -> Measurement:
        """The breaking eps: the first eps where worst-case robust accuracy falls below the policy's floor (the
        threshold's min), in the details and the summary. The judge's side: the measurement knows no policy."""
        floor = threshold.min if threshold is not None and threshold.min is not None else None
        if floor is None or m.details is None:
            return m
        worst = [p for p in m.details.points if p.attack == WORST_CASE]
        breaking = next((p.eps for p in worst if p.robust_accuracy < floor), None)
        text = f"; falls below the policy floor {floor:.0%} at eps {breaking:g}" if breaking is not None \
            else f"; stays above the policy floor {floor:.0%} over the whole grid"
        details = dataclasses.replace(m.details, breaking_eps=breaking, policy_floor=floor)
        return dataclasses.replace(m, details=details, summary=m.summary + text)
