"""Cross-check of the native attack engine against ART, the reference implementation, on a subsample.

ART's ``FastGradientMethod`` and ``ProjectedGradientDescent`` run on the same model, points, labels (true labels),
eps, steps and step size (audit/methods/art_adapter.py). ``max_shortfall_vs_art`` is how much weaker ours is than
ART's at worst (positive: ART found more adversarial examples); the policy bounds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, controls
from audit.core.result import Details, Measurement
from audit.methods.art_adapter import compare_with_art


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


class ArtAgreement:
    id = "art_agreement"
    title = "Agreement with ART's reference attacks"
    scope = "variant"
    controls = controls(MEASURE_2_13="direct", MEASURE_2_1="supporting")
    description = ("Our FGSM and PGD against ART's FastGradientMethod and ProjectedGradientDescent on a subsample "
                   "at the middle eps of the grid, same settings and true labels.")
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    Details = ArtAgreementDetails

    def measure(self, ctx: AuditContext, variant: str | None) -> Measurement:
        import art
        a = ctx.config.attacks
        n = min(a.art_crosscheck_points, ctx.data.x_test.shape[0])
        idx = torch.from_numpy(np.random.default_rng(ctx.config.seed).choice(ctx.data.x_test.shape[0], n,
                                                                               replace=False))
        eps = a.eps[len(a.eps) // 2]
        res = compare_with_art(ctx.variants[variant].model, ctx.data.x_test[idx], ctx.data.y_test[idx], eps=eps,
                               norm=a.norm.value, steps=a.pgd_steps, clip=ctx.data.attack_clip,
                               num_classes=ctx.data.num_classes, seed=ctx.config.seed,
                               attacks=tuple(x for x in a.attacks if x in ("fgsm", "pgd")))
        shortfall = max(r["shortfall"] for r in res.values())
        text = "; ".join(f"{k.upper()} ours {r['ours']:.1%} vs ART {r['art']:.1%}" for k, r in res.items())
        return Measurement(check=self.id, variant=variant, metrics={"max_shortfall_vs_art": shortfall},
                           details=ArtAgreementDetails(points=n, eps=eps, norm=a.norm.value, steps=a.pgd_steps,
                                                       attacks={k: ArtComparison(**r) for k, r in res.items()},
                                                       art_version=art.__version__),
                           summary=f"{text} on {n} points at eps {eps:g}")
