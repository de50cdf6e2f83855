"""Cross-check of the native attack engine against ART, the reference implementation, on a subsample.

ART's ``FastGradientMethod`` and ``ProjectedGradientDescent`` (on ``art_crosscheck_points``), and its
``AutoProjectedGradientDescent`` and ``SquareAttack`` (on at most 64 of them: ART runs them in NumPy, query by
query), run on the same model, points, true labels, eps and settings as ours (audit/methods/art_adapter.py); Square
with at most 1,000 queries on both sides, on the candidate variant only (a random search does not depend on
the model's gradients, so one agreement checks the implementation; ART's Square is the slowest part of the
check). ``max_shortfall_vs_art`` is how much weaker ours is than ART's at worst
(positive: ART found more adversarial examples) over the gradient attacks; the policy bounds it. Square is a
random search: on 64 points two runs differ by chance, so its shortfall is reported (``square_shortfall_vs_art``)
and bench/square_vs_art.py measures the agreement on more points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.base import Ball, frozen_eval
from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.core.result import Details, Measurement
from audit.methods.art_adapter import ART_NAMES, compare_with_art
from audit.models.adapters import looks_like_probabilities

SLOW_POINTS = 64        # ART's APGD and Square run query by query in NumPy
SQUARE_QUERIES = 1000
RANDOM_SEARCH = ("square",)  # two random searches differ by chance on 64 points: reported, not judged


def _outputs_probabilities(model, x: torch.Tensor, device) -> bool:
    """Every output row non-negative and summing to 1 (a softmax head)."""
    with frozen_eval(model), torch.no_grad():
        out = model(x.to(device)).float()
    return looks_like_probabilities(out)


@dataclass(frozen=True)
class ArtComparison:
    ours: float       # our robust accuracy on the subsample
    art: float        # ART's, same settings
    shortfall: float  # ours - art (positive: ours is weaker)


@dataclass(frozen=True)
class ArtAgreementDetails(Details):
    points: int
    eps: float
    norm: str
    steps: int
    attacks: dict[str, ArtComparison]
    art_version: str
    settings: dict[str, str]          # attack -> the settings both ran with, and on how many points
    art_classes: dict[str, str]       # attack -> ART's class


@register
class ArtAgreement(VariantCheck):
    id = "art_agreement"
    rank = 60
    title = "Agreement with ART's reference attacks"
    controls = controls(MEASURE_2_13="direct", MEASURE_2_1="supporting")
    description = ("Our FGSM, PGD, APGD-CE and Square against ART's FastGradientMethod, ProjectedGradientDescent, "
                   "AutoProjectedGradientDescent and SquareAttack on a subsample at the gated eps (the threat "
                   "model's), same settings and true labels.")
    Details = ArtAgreementDetails

    def cost(self, sheet: CostSheet, variant: str) -> None:
        a, costs = sheet.config.attacks, sheet.costs
        pts = min(a.art_crosscheck_points, sheet.n_test)
        small = min(64, pts)
        fb = pts * (1 + a.pgd_steps) + small * a.apgd_steps
        sheet.add(f"check {self.id}:{variant}", fb, pts * 2.0,
                  seconds=2 * fb * costs.grad_row + fb * costs.art_grad_row)
        if variant == sheet.config.candidate:
            q = min(a.square_queries, 1000)
            sheet.add(f"  ART and native Square:{variant}", 0.0, 2 * small * q,
                      seconds=small * q * (costs.art_query_row + costs.small_forward_row))

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        import art
        a = ctx.config.attacks
        n = min(a.art_crosscheck_points, ctx.data.x_test.shape[0])
        idx = torch.from_numpy(np.random.default_rng(ctx.config.seed).choice(ctx.data.x_test.shape[0], n,
                                                                               replace=False))
        eps = ctx.gated_eps
        x, y = ctx.data.x_test[idx], ctx.data.y_test[idx]
        model = ctx.variants[variant].model
        ball = Ball(eps, a.norm, ctx.data.attack_clip)
        res = compare_with_art(model, x, y, ball, params={"fgsm": {}, "pgd": {"steps": a.pgd_steps}},
                               num_classes=ctx.data.num_classes, seed=ctx.config.seed)
        settings = {"fgsm": f"one step, {n} points", "pgd": f"{a.pgd_steps} steps, step 2.5 eps/steps, {n} points"}
        small = min(n, SLOW_POINTS)
        slow = {"apgd_ce": {"steps": a.apgd_steps}}
        settings["apgd_ce"] = f"{a.apgd_steps} steps, cross-entropy, 1 restart, {small} points"
        if _outputs_probabilities(model, x[:small], ctx.device):
            del slow["apgd_ce"]  # ART's APGD-CE refuses such a model; C9 reports the softmax output
            settings["apgd_ce"] = ("not cross-checked: the model outputs probabilities, which ART's APGD with "
                                   "cross-entropy refuses (validity check C9 reports it)")
        if x.dim() == 4 and min(x.shape[2:]) >= 3 and variant != ctx.config.candidate:
            settings["square"] = ("cross-checked on the candidate only: a random search's agreement with ART "
                                  "tests our implementation, not this model, and ART's NumPy Square costs seconds")
        elif x.dim() == 4 and min(x.shape[2:]) >= 3:
            q = min(a.square_queries, SQUARE_QUERIES)
            slow["square"] = {"queries": q, "p_init": a.square_p_init}
            settings["square"] = f"{q:,} queries, p_init {a.square_p_init:g}, {small} points"
        res.update(compare_with_art(model, x[:small], y[:small], ball, params=slow, num_classes=ctx.data.num_classes,
                                    seed=ctx.config.seed))
        shortfall = max(r["shortfall"] for k, r in res.items() if k not in RANDOM_SEARCH)
        metrics = {"max_shortfall_vs_art": shortfall}
        metrics.update({f"{k}_shortfall_vs_art": r["shortfall"] for k, r in res.items() if k in RANDOM_SEARCH})
        text = "; ".join(f"{k.upper()} ours {r['ours']:.1%} vs ART {r['art']:.1%}" for k, r in res.items())
        return Measurement(check=self.id, variant=variant, metrics=metrics,
                           details=ArtAgreementDetails(points=n, eps=eps, norm=a.norm.value, steps=a.pgd_steps,
                                                       attacks={k: ArtComparison(**r) for k, r in res.items()},
                                                       art_version=art.__version__, settings=settings,
                                                       art_classes={k: ART_NAMES[k] for k in res}),
                           summary=f"{text} at eps {eps:g}")
