"""Cross-check of the native attack engine against ART, the reference implementation, on a subsample.

ART's ``FastGradientMethod``, ``ProjectedGradientDescent``, ``AutoProjectedGradientDescent`` and ``SquareAttack``
run on the same model, points, true labels, eps and settings as ours (audit/methods/art_adapter.py), and the two are
compared point by point: the points only ART broke are evidence of a weaker attack on those points, but a few of
them are what two random-started attacks give by chance. So the judged metric, ``significant_shortfall_vs_art``, is
the largest shortfall (ours - ART's robust accuracy) among the gradient attacks whose exact one-sided paired test
(binomial on the discordant points, H0: ours at least as strong) is significant at ``alpha``, 0 when none is; the
policy bounds it (a failure needs both: significant, and larger than the policy's max). ``max_shortfall_vs_art``,
the raw largest shortfall, is reported.

Subsamples (sorted test indices, prefixes of one seeded order stratified by class and by what the grid did at the
gated eps; audit/methods/art_budget.py): a budget of at most ``max_share`` of the variant's attack time, the
grid's (its stage's seconds where it ran here), sizes them from ART's and our seconds per point and step measured
on a calibration batch, rounded down to floor x 2^k points so that reruns judge the same count. FGSM, PGD and
APGD-CE (ART's runs in NumPy) share one subsample of at least ``min_points`` or, by default, the fewest points on
which a shortfall of ``detect_shortfall`` can be significant, ``points_to_detect`` (167 at alpha 0.05 and 3
points), capped by ``art_crosscheck_points`` and the test split (the finding says when the cap or the budget leaves
too few; when the budget cannot pay for the floor the floor runs, over budget, and the details say so). Square,
with at most 1,000 queries, on the candidate only (a random search does not depend on the model's gradients, so
one agreement checks the implementation; ART's Square is the slowest part of the check), on what the budget leaves:
at least 16 and at most ``square_points`` points. Two random searches differ by chance, so its shortfall is reported
(``square_shortfall_vs_art``), not judged, and bench/square_vs_art.py measures it on more points. Every verified
break of both sides is recorded in the variant's break ledger: it counts in the worst case.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from attacks.base import Ball, frozen_eval
from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register, settings
from audit.checks.run_view import Breaks, RobustnessGrid
from audit.config.art_agreement import ArtAgreementConfig
from audit.config.policy import Threshold
from audit.core.metrics import WORST_CASE, same_eps
from audit.core.result import Details, Measurement
from audit.methods import art_budget as budget
from audit.methods.art_adapter import ART_NAMES, Paired, compare_with_art, fewest_significant, points_to_detect
from audit.methods.art_budget import ArtBudget, ArtBudgetSeconds
from audit.models.adapters import looks_like_probabilities

SQUARE_QUERIES = 1000
RANDOM_SEARCH = ("square",)  # two random searches differ by chance on 64 points: reported, not judged
SHOWN_INDICES = 50      # test indices of the points only ART broke kept in the details, per attack


def _outputs_probabilities(model, x: torch.Tensor, device) -> bool:
    """Every output row non-negative and summing to 1 (a softmax head)."""
    with frozen_eval(model), torch.no_grad():
        out = model(x.to(device)).float()
    return looks_like_probabilities(out)


@dataclass(frozen=True)
class ArtComparison:
    ours: float       # our robust accuracy on the subsample
    art: float        # ART's, same settings
    shortfall: float  # ours - art (positive: ours is weaker); (only_art - only_ours) / points
    points: int = 0           # the subsample it ran on
    only_art: int = 0         # points ART broke and ours did not
    only_ours: int = 0        # points ours broke and ART did not
    p_value: float = 1.0      # exact one-sided paired test, H0: ours at least as strong as ART's
    only_art_indices: tuple[int, ...] = ()   # their test indices (the first SHOWN_INDICES)
    art_outside: int = 0      # ART examples misclassified but outside the ball or range: not counted as breaks
    smallest_significant: float = 0.0   # the smallest shortfall these points can show significant at alpha


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
    alpha: float = 0.05
    detect_shortfall: float = 0.03
    significant: tuple[str, ...] = ()   # judged attacks whose paired test is significant at alpha
    too_small: str = ""               # why a judged attack's subsample cannot detect detect_shortfall ("" when all can)
    budget: ArtBudget | None = None   # what the cross-check cost and what bounded its points (schema 2.4)


@dataclass(frozen=True)
class _Plan:
    """What the check runs: attack -> (sorted test indices, our settings), every attack's settings text, and the
    budget (its seconds spent filled in once measured)."""

    runs: dict[str, tuple[np.ndarray, dict]]
    settings: dict[str, str]
    budget: ArtBudget


def _params(ctx: AuditContext, variant: str, probe: torch.Tensor) -> tuple[dict[str, dict], dict[str, str]]:
    """Our settings of each attack the check runs on this variant, and why each other one does not run."""
    a, x_test = ctx.config.attacks, ctx.data.x_test
    params: dict[str, dict] = {"fgsm": {}, "pgd": {"steps": a.pgd_steps}}
    why = {}
    if _outputs_probabilities(ctx.variants[variant].model, x_test[probe], ctx.device):
        why["apgd_ce"] = ("not cross-checked: the model outputs probabilities, which ART's APGD with cross-entropy "
                          "refuses (validity check C9 reports it)")
    else:
        params["apgd_ce"] = {"steps": a.apgd_steps}
    image = x_test.dim() == 4 and min(x_test.shape[2:]) >= 3
    if image and variant != ctx.config.candidate:
        why["square"] = ("cross-checked on the candidate only: a random search's agreement with ART tests our "
                         "implementation, not this model, and ART's NumPy Square costs seconds")
    elif image:
        params["square"] = {"queries": min(a.square_queries, SQUARE_QUERIES), "p_init": a.square_p_init}
    return params, why


def _order(ctx: AuditContext, variant: str) -> tuple[np.ndarray, str]:
    """The test split in one seeded order stratified by class and by what the grid (when it ran) did at the gated
    eps, and what it is stratified by."""
    grid = ctx.computed(RobustnessGrid, variant)
    robust = None if grid is None else next((m for (attack, e), m in grid.correct.items()
                                             if attack == WORST_CASE and same_eps(e, ctx.gated_eps)), None)
    y = ctx.data.y_test.numpy()
    strata, kind, how = budget.strata_of(y, ctx.clean_correct(variant), robust)
    return budget.stratified_order(strata, ctx.config.seed, cover=(y, kind)), how


def attack_time(ctx: AuditContext, variant: str, order: np.ndarray) -> tuple[float, str]:
    """The variant's attack time, the grid's, and what it is: the grid stage's wall seconds in the run record
    ("timed": the grid ran in this process, as it really ran), else its counted passes ("measured": another
    executor ran it) or its planned ones ("planned": it has not run) at our model's seconds per row on ``order``'s
    first points."""
    a, d = ctx.config.attacks, ctx.data
    grid = ctx.computed(RobustnessGrid, variant)
    timed = None if grid is None else ctx.stage_seconds(RobustnessGrid.stage_name(variant))
    if timed is not None:
        return timed, "timed"
    rows = torch.from_numpy(order[:min(budget.ROW_BATCH, a.batch_size)])
    return budget.attack_seconds(None if grid is None else grid.points, a, d.x_test.shape[0],
                                 *budget.row_seconds(ctx.variants[variant].model, d.x_test[rows], d.y_test[rows]))


def _plan(ctx: AuditContext, variant: str, cfg: ArtAgreementConfig) -> _Plan:
    a, d, model = ctx.config.attacks, ctx.data, ctx.variants[variant].model
    n_test = d.x_test.shape[0]
    cap = min(a.art_crosscheck_points, n_test)
    order, how = _order(ctx, variant)
    probe = torch.from_numpy(order[:min(budget.CAL_ROWS, cap)])
    params, why = _params(ctx, variant, probe)
    rates = budget.calibrate(model, d.x_test[probe], params, d.attack_clip, a.norm, num_classes=d.num_classes,
                             seed=ctx.config.seed, batch_size=budget.art_batch(a.batch_size, probe.numel()))
    attack, source = attack_time(ctx, variant, order)
    floor = cfg.min_points or points_to_detect(cfg.detect_shortfall, cfg.alpha)
    s = budget.size(rates, {k: budget.steps_of(k, p) for k, p in params.items()}, cfg.max_share * attack,
                    floor=floor, cap=cap, square_cap=min(cfg.square_points, cap))
    n, q = s.points, params.get("square", {}).get("queries", 0)
    text = {"fgsm": f"one step, {n} points", "pgd": f"{a.pgd_steps} steps, step 2.5 eps/steps, {n} points",
            "apgd_ce": f"{a.apgd_steps} steps, cross-entropy, 1 restart, {n} points",
            "square": f"{q:,} queries, p_init {a.square_p_init:g}, {s.square_points} points (reported, not judged)"}
    runs = {k: (np.sort(order[:s.square_points if k == "square" else n]), p) for k, p in params.items()}
    settings = {k: text[k] if k in params else why[k] for k in ART_NAMES if k in params or k in why}
    seconds = ArtBudgetSeconds(attack=round(attack, 6), allowed=round(cfg.max_share * attack, 6),
                               planned=round(s.planned, 6), spent=0.0, share=0.0)
    return _Plan(runs, settings, ArtBudget(max_share=cfg.max_share, points=n, square_points=s.square_points,
                                           floor=min(floor, cap), cap=cap, limited_by=s.limited_by,
                                           attack_time=source, stratified_by=how, seconds=seconds,
                                           sized_from=s.sized_from))


def comparison(r: Paired, idx: np.ndarray, alpha: float) -> ArtComparison:
    """The details of one attack's paired result ``r`` on the test indices ``idx``."""
    return ArtComparison(ours=r.ours, art=r.art, shortfall=r.shortfall, points=r.points, only_art=r.only_art,
                         only_ours=r.only_ours, p_value=r.p_value,
                         only_art_indices=tuple(int(i) for i in idx[r.only_art_mask][:SHOWN_INDICES]),
                         art_outside=r.art_outside, smallest_significant=fewest_significant(alpha) / max(r.points, 1))


def shortfall_metrics(cmp: dict[str, ArtComparison], alpha: float) -> tuple[dict[str, float], list[str]]:
    """The metrics (``significant_shortfall_vs_art``: the largest shortfall among the gradient attacks whose paired
    test is significant at ``alpha``, 0 when none is; ``max_shortfall_vs_art``; Square's, reported) and the
    significant attacks."""
    judged = {k: c for k, c in cmp.items() if k not in RANDOM_SEARCH}
    significant = [k for k, c in judged.items() if c.p_value < alpha]
    metrics = {"significant_shortfall_vs_art": max([judged[k].shortfall for k in significant], default=0.0),
               "max_shortfall_vs_art": max([c.shortfall for c in judged.values()], default=0.0)}
    metrics.update({f"{k}_shortfall_vs_art": c.shortfall for k, c in cmp.items() if k in RANDOM_SEARCH})
    return metrics, significant


def _too_small(ctx: AuditContext, cmp: dict[str, ArtComparison], cfg: ArtAgreementConfig, b: ArtBudget) -> str:
    """Which judged attacks ran on too few points to detect ``detect_shortfall`` at alpha, and why: the points cap,
    or the time budget where min_points let it go below the paired test's need ("" for none)."""
    short = [f"{k.upper()} on {c.points} points (significant only from {c.smallest_significant:.1%})"
             for k, c in cmp.items() if k not in RANDOM_SEARCH and c.smallest_significant > cfg.detect_shortfall]
    if not short:
        return ""
    need = points_to_detect(cfg.detect_shortfall, cfg.alpha)
    if b.points >= b.cap:
        why = (f"capped by attacks.art_crosscheck_points {ctx.config.attacks.art_crosscheck_points} and the "
               f"{ctx.data.x_test.shape[0]}-point test split")
    else:
        allowed = (f"{b.points} (sized from timings)" if b.limited_by == "budget"
                   else f"fewer than min_points {cfg.min_points}")
        why = (f"cut by the time budget: checks.art_agreement.max_share {cfg.max_share:g} of the attack time "
               f"allowed {allowed} and min_points {cfg.min_points} is below the need")
    return (f"too few points to detect a {cfg.detect_shortfall:.1%} shortfall at alpha {cfg.alpha:g} (needs {need}; "
            f"{why}): {', '.join(short)}")


def _text(cmp: dict[str, ArtComparison], significant: list[str], cfg: ArtAgreementConfig) -> str:
    parts = []
    for k, c in cmp.items():
        pair = f" (only ART broke {c.only_art}, only ours {c.only_ours}: p {c.p_value:.2g})" if c.only_art else ""
        parts.append(f"{k.upper()} ours {c.ours:.1%} vs ART {c.art:.1%} on {c.points}{pair}")
    verdict = (f"significantly weaker than ART at alpha {cfg.alpha:g}: {', '.join(k.upper() for k in significant)}"
               if significant else f"no significant shortfall at alpha {cfg.alpha:g}")
    return f"{'; '.join(parts)}; {verdict}"


@register
class ArtAgreement(VariantCheck):
    id = "art_agreement"
    rank = 60
    title = "Agreement with ART's reference attacks"
    controls = controls(MEASURE_2_13="direct", MEASURE_2_1="supporting")
    description = ("Our FGSM, PGD, APGD-CE and Square against ART's FastGradientMethod, ProjectedGradientDescent, "
                   "AutoProjectedGradientDescent and SquareAttack on a subsample at the gated eps (the threat "
                   "model's), same settings and true labels, compared point by point with an exact paired test.")
    Details = ArtAgreementDetails
    Config = ArtAgreementConfig   # its [checks.art_agreement] table (in the config room: AuditConfig holds it)

    def cost(self, sheet: CostSheet, variant: str) -> None:
        """The budget's sizing at the dry run's prices: the attack sweep's seconds, ours and ART's per row."""
        a, costs, cfg = sheet.config.attacks, sheet.costs, settings(self, sheet.config)
        cap, q = min(a.art_crosscheck_points, sheet.n_test), min(a.square_queries, SQUARE_QUERIES)
        steps = {"fgsm": 1, "pgd": a.pgd_steps, "apgd_ce": a.apgd_steps}
        if variant == sheet.config.candidate:
            steps["square"] = q
        grad = 2 * costs.grad_row + costs.art_grad_row
        rates = budget.Rates({"fgsm": grad, "pgd": grad, "apgd_ce": grad,
                              "square": costs.art_query_row + costs.small_forward_row})
        fb, fwd, fwd_row = sheet.attack_sweep()
        s = budget.size(rates, steps, cfg.max_share * (fb * costs.grad_row + fwd * fwd_row), floor=cfg.min_points
                        or points_to_detect(cfg.detect_shortfall, cfg.alpha), cap=cap, square_cap=min(cfg.square_points,
                                                                                                       cap))
        sheet.add(f"check {self.id}:{variant}", s.points * (1 + a.pgd_steps + a.apgd_steps), s.points * 2.0,
                  seconds=sum(rates.seconds(k, steps[k], s.points) for k in steps if k != "square"))
        if "square" in steps:
            sheet.add(f"  ART and native Square:{variant}", 0.0, 2 * s.square_points * q,
                      seconds=rates.seconds("square", q, s.square_points))

    def with_threshold(self, m: Measurement, threshold: Threshold | None) -> Measurement:
        """A policy stricter than what the subsample was sized for (its max below ``detect_shortfall``) is said: a
        shortfall between the two can fail only where these points can show it significant."""
        d = m.details
        if threshold is None or threshold.max is None or d is None or threshold.max >= d.detect_shortfall:
            return m
        short = [f"{k.upper()} from {c.smallest_significant:.1%}" for k, c in d.attacks.items()
                 if k not in RANDOM_SEARCH and c.smallest_significant > threshold.max]
        if not short:
            return m
        return dataclasses.replace(m, summary=f"{m.summary}; the policy's max {threshold.max:.1%} is below the "
                                   f"{d.detect_shortfall:.1%} the subsample was sized to detect (set "
                                   f"checks.art_agreement.detect_shortfall): significant only {', '.join(short)}")

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        start = time.perf_counter()
        import art
        a, cfg, eps = ctx.config.attacks, settings(self, ctx.config), ctx.gated_eps
        plan = _plan(ctx, variant, cfg)
        model, ledger = ctx.variants[variant].model, ctx.get(Breaks, variant)
        ball = Ball(eps, a.norm, ctx.data.attack_clip)
        cmp: dict[str, ArtComparison] = {}
        for name, (idx, params) in plan.runs.items():
            t = torch.from_numpy(idx)
            r = compare_with_art(model, ctx.data.x_test[t], ctx.data.y_test[t], ball, params={name: params},
                                 num_classes=ctx.data.num_classes, seed=ctx.config.seed,
                                 batch_size=budget.art_batch(a.batch_size, idx.size))[name]
            ledger.add(f"ART {ART_NAMES[name]} (cross-check)", self.id, eps, idx, r.clean_ok, r.art_broken)
            ledger.add(f"{name.upper()} ours (ART cross-check)", self.id, eps, idx, r.clean_ok, r.ours_broken)
            cmp[name] = comparison(r, idx, cfg.alpha)
        metrics, significant = shortfall_metrics(cmp, cfg.alpha)
        too_small = _too_small(ctx, cmp, cfg, plan.budget)
        details = ArtAgreementDetails(
            points=plan.budget.points, eps=eps, norm=a.norm.value, steps=a.pgd_steps, attacks=cmp,
            art_version=art.__version__, settings=plan.settings, art_classes={k: ART_NAMES[k] for k in cmp},
            alpha=cfg.alpha, detect_shortfall=cfg.detect_shortfall, significant=tuple(significant),
            too_small=too_small, budget=budget.with_spent(plan.budget, time.perf_counter() - start))
        return Measurement(check=self.id, variant=variant, metrics=metrics, details=details,
                           summary=f"{_text(cmp, significant, cfg)} at eps {eps:g}" + (f"; {too_small}" if too_small
                                                                                     else ""))
