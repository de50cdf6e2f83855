"""White-box evasion robustness: every configured attack at every eps, true labels, per-example worst case over
everything the run measured.

Threat model: white-box (gradients, architecture and weights known), untargeted, the attacker controls test
inputs within an eps-ball of the configured norm inside the valid input range (NIST AI 100-2 §2.2.1).

The check runs after the other checks that attack test points (validity probes, the ART cross-check, the
deployment check's attacks on its source) and counts their breaks (audit/methods/worst_case.py): the reported
worst case is the lowest of the full-set worst case and any subsample estimate where such an attack broke points
the grid missed. A robustness number a validity check contradicts (a failed validity check, or C6's Square breaking
points the grid missed) is at best a failure labelled "unreliable".
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.art_agreement import ArtAgreement
from audit.checks.attack_validity import AttackValidity
from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.deployments import Deployments
from audit.checks.run_view import Breaks, RobustnessGrid, TestLogits
from audit.config.policy import Threshold
from audit.core.metrics import WORST_CASE, Accuracy, RobustnessPoint, metric_key, pack_bits, same_eps, unpack_bits
from audit.core.result import Details, Finding, Measurement, Status
from audit.data.rows import take
from audit.methods import gallery as gal
from audit.methods.evaluation import RobustnessEval
from audit.methods.worst_case import Consolidated, WorstCase, consolidate

GALLERY, PER_CLASS = 12, 2   # adversarial examples shown per variant, at most this many per true class first


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
class GalleryExample:
    """One test point the grid broke at the gallery's eps, with base64 PNGs of the original, the adversarial input
    and the perturbation (amplified by the gallery's factor; mid-grey = unchanged), images only."""

    row: int                  # test-split row
    true_label: str
    predicted_label: str      # the model's class for the adversarial input
    confidence: float         # softmax probability of predicted_label on the adversarial input
    clean_confidence: float   # softmax probability of true_label on the original
    attack: str               # the grid attack whose adversarial input this is
    perturbation: float       # ||x_adv - x|| in the threat norm, input units (full resolution)
    original_png: str = ""
    adversarial_png: str = ""
    perturbation_png: str = ""


@dataclass(frozen=True)
class MovedFeature:
    """A feature the breaks moved: mean |x_adv - x| over every adversarial input that broke a point."""

    name: str
    mean_abs_delta: float               # the model's input units (standardised for built-in tables)
    mean_abs_delta_data: float | None   # the data's own units (times the standardisation's std), when known


@dataclass(frozen=True)
class Gallery:
    """Adversarial examples of one variant at the gated eps: the grid's own adversarial inputs (for each point
    the most confident of the attacks that broke it), the most confident mistakes with at most PER_CLASS per true
    class while others remain (images); the features the attacks moved most (tabular data)."""

    eps: float
    norm: str
    broken: int                         # clean-correct test points the grid's attacks broke at eps
    shown: int
    per_class: int = 0                  # at most this many per true class while other classes remain (images)
    amplification: float = 0.0          # the perturbation panels' factor (images)
    side: int = 0                       # pixels a side of the PNGs (inputs over audit/methods/gallery.SIDE shrunk)
    source_side: int = 0                # pixels a side of the inputs
    examples: tuple[GalleryExample, ...] = ()
    moved: tuple[MovedFeature, ...] = ()
    moved_breaks: int = 0               # adversarial inputs the feature means average over


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
    worst_case: tuple[WorstCase, ...] = ()   # per eps: the reported number, the grid's, every break counted, why
    broken_by: dict[str, str] = dataclasses.field(default_factory=dict)  # source -> packed bits at the gated eps
    unreliable: tuple[str, ...] = ()        # "C6 black-box not stronger than white-box: evidence" per contradiction
    gallery: Gallery | None = None          # adversarial examples at the gated eps (image or tabular data)


def per_class(ctx: AuditContext, masks: dict[float, np.ndarray], rows: np.ndarray | None = None
              ) -> tuple[ClassRobustness, ...]:
    """Per true class: the share of its test points (of ``rows``: all by default) each eps's mask holds (the worst
    case's robust masks, every recorded break counted; or the certified ones), with Wilson intervals."""
    y = ctx.data.y_test.numpy()
    rows = np.arange(len(y)) if rows is None else rows
    names = ctx.data.class_names or tuple(str(k) for k in range(ctx.data.num_classes))
    out = []
    for k in range(ctx.data.num_classes):
        sel = rows[y[rows] == k]
        robust = {}
        for e, mask in masks.items():
            acc = Accuracy.of(mask[sel])
            robust[f"{e:g}"] = Interval(acc.value, acc.ci_low, acc.ci_high)
        out.append(ClassRobustness(label=names[k] if k < len(names) else str(k), n=int(sel.size), robust=robust))
    return tuple(out)


def safe_gallery(ctx: AuditContext, variant: str, ev: RobustnessEval, eps: float) -> Gallery | None:
    """:func:`gallery`, or None with a warning if it fails: an illustration never turns the finding into an ERROR."""
    try:
        return gallery(ctx, variant, ev, eps)
    except Exception as e:  # noqa: BLE001
        logging.getLogger(__name__).warning("gallery of %s not shown (%s: %s)", variant, type(e).__name__, e)
        return None


def gallery(ctx: AuditContext, variant: str, ev: RobustnessEval, eps: float) -> Gallery | None:
    """The variant's gallery at ``eps`` from the grid's kept adversarial inputs; None for inputs neither images
    (C, H, W) nor feature rows."""
    d, shape = ctx.data, ctx.data.input_shape
    image = d.kind == "image" and len(shape) == 3
    if not image and len(shape) != 1:
        return None
    kept = next((k for e, k in ev.examples.items() if same_eps(e, eps)), gal.Kept())
    grid = next(m for (a, e), m in ev.correct.items() if a == WORST_CASE and same_eps(e, eps))
    broken = int((ctx.clean_correct(variant) & ~grid).sum())
    base = Gallery(eps=eps, norm=ctx.config.attacks.norm.value, broken=broken, shown=0, per_class=PER_CLASS)
    if not image:
        moved = gal.moved_most(kept, d.feature_names, d.preprocessing.get("std"))
        return dataclasses.replace(base, moved=tuple(MovedFeature(*m) for m in moved), moved_breaks=kept.moved_n)
    chosen = [a for a in gal.choose(kept.examples, GALLERY, PER_CLASS) if a.delta is not None]
    if not chosen:
        return base
    rows = np.asarray([a.row for a in chosen], dtype=np.int64)
    x = take(d.x_test, rows)
    x = x if isinstance(x, torch.Tensor) else x[0:len(rows)]
    clean = torch.softmax(ctx.get(TestLogits, variant)[torch.from_numpy(rows)].float(), 1).numpy()
    deltas = torch.stack([a.delta for a in chosen if a.delta is not None])
    pngs, factor = gal.panels(torch.stack([gal.shrink(v) for v in x]), deltas, d.clip)
    names = d.class_names or tuple(str(k) for k in range(d.num_classes))
    examples = tuple(GalleryExample(row=a.row, true_label=names[a.label], predicted_label=names[a.pred],
                                    confidence=a.confidence, clean_confidence=float(clean[j, a.label]),
                                    attack=a.attack, perturbation=a.norm, original_png=p[0], adversarial_png=p[1],
                                    perturbation_png=p[2]) for j, (a, p) in enumerate(zip(chosen, pngs, strict=True)))
    return dataclasses.replace(base, shown=len(examples), amplification=factor, side=int(max(deltas.shape[2:])),
                               source_side=int(max(shape[1:])), examples=examples)


def reported_points(points, worst: Consolidated) -> tuple[RobustnessPoint, ...]:
    """The grid's points with each worst-case point replaced by the reported worst case (its bits: every break)."""
    by_eps = {w.eps: w for w in worst.points}
    out = []
    for p in points:
        w = by_eps.get(p.eps) if p.attack == WORST_CASE else None
        if w is not None:
            p = dataclasses.replace(p, robust_accuracy=w.value, ci_low=w.ci_low, ci_high=w.ci_high,
                                    correct_bits=pack_bits(worst.robust[w.eps]))
        out.append(p)
    return tuple(out)


def contradictions(ctx: AuditContext, variant: str) -> tuple[str, ...]:
    """What in this run contradicts the variant's robustness number: every failed validity check. C6 fails when
    Square breaks more of the points the white-box grid left robust than its thresholds allow (the policy's
    ``black_box_fail_share``/``_points``); a single such point warns and counts in the worst case, but does not by
    itself call the number unreliable (that would make the verdict turn on one point of seed noise)."""
    m = ctx.measurement(AttackValidity.id, variant)
    if m is None or m.details is None:
        return ()
    return tuple(f"{r.id} {r.name}: {r.evidence}" for r in m.details.validity_checks if r.status is Status.FAIL)


def sentence(w: WorstCase, norm: str, n_test: int) -> str:
    """'worst-case robust accuracy 41.2% at Linf eps 0.3 (95% CI ...)', with where the number comes from."""
    text = f"worst-case robust accuracy {w.value:.1%} at {norm} eps {w.eps:g} (95% CI {w.ci_low:.1%}-{w.ci_high:.1%})"
    if w.estimated_from:
        text += f", {w.estimated_from}; every attack's breaks on all {n_test} test points: {w.measured:.1%}"
    elif w.measured < w.grid:
        extra = ", ".join(f"{k} {v}" for k, v in w.extra.items() if v)
        text += f" (the attack grid alone: {w.grid:.1%}; points only other attacks of this run broke: {extra})"
    return text


@register
class Robustness(VariantCheck):
    id = "robustness"
    rank = 40
    title = "Robustness to white-box evasion attacks"
    controls = controls(MEASURE_2_7="direct", MEASURE_2_6="direct", MAP_2_2="direct", MANAGE_1_4="supporting")
    description = ("Robust accuracy (share of all test points still correct under attack, true labels) for every "
                   "attack and eps, and the per-example worst case over the attacks.")
    Details = RobustnessDetails
    after = (AttackValidity, ArtAgreement, Deployments)   # their attacks' breaks count in the worst case
    triage_columns = ("broken_outside_grid",)
    triage_split = "test"

    def triage(self, details: RobustnessDetails, row) -> None:
        """Test points at the gated eps that only attacks outside the grid broke, and which ones."""
        grid = set(details.attack_settings) | {WORST_CASE}
        n = sum(c.n for c in details.per_class)
        outside = {k: unpack_bits(v, n) for k, v in details.broken_by.items() if k not in grid}
        if not outside:
            return
        inside = [unpack_bits(v, n) for k, v in details.broken_by.items() if k in grid]
        by_grid = np.logical_or.reduce(inside) if inside else np.zeros(n, dtype=bool)
        for i in np.flatnonzero(np.logical_or.reduce(list(outside.values())) & ~by_grid):
            row("test", int(i))["broken_outside_grid"] = "; ".join(k for k, m in outside.items() if m[i])

    def cost(self, sheet: CostSheet, variant: str) -> None:
        fb, fwd, per_row = sheet.attack_sweep()
        sheet.add(f"check {self.id}:{variant}", fb, fwd + sheet.n_test, fwd_cost=per_row)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        ev = ctx.get(RobustnessGrid, variant)
        worst = consolidate(ev.correct, ctx.computed(Breaks, variant), ctx.clean_correct(variant))
        points = reported_points(ev.points, worst)
        metrics = {}
        for p in points:
            name = "worst_case_robust_accuracy" if p.attack == WORST_CASE else f"robust_accuracy_{p.attack}"
            metrics[metric_key(name, p.eps)] = p.robust_accuracy
        gated = ctx.gated_eps
        mid = next(w for w in worst.points if same_eps(w.eps, gated))
        unreliable = contradictions(ctx, variant)
        a = ctx.config.attacks
        details = RobustnessDetails(
            points=points, gated_eps=gated, breaking_eps=None, policy_floor=None,
            per_class=per_class(ctx, worst.robust), preset=a.preset,
            attack_settings={name: a.describe(name) for name in a.attacks if name not in ev.skipped},
            skipped_attacks=dict(ev.skipped), early_stop=a.early_stop, precision=a.precision,
            worst_case=worst.points, unreliable=unreliable, gallery=safe_gallery(ctx, variant, ev, gated),
            broken_by={k: pack_bits(m) for k, m in worst.sources[mid.eps].items() if np.any(m)})
        text = sentence(mid, a.norm.label, len(worst.robust[mid.eps]))
        if unreliable:
            text = f"unreliable ({', '.join(u.split(':')[0] for u in unreliable)} contradict it): {text}"
        return Measurement(check=self.id, variant=variant, metrics=metrics, details=details, summary=text,
                           at_best=Status.FAIL if unreliable else None)

    def notes(self, finding: Finding) -> tuple[str, ...]:
        """Why the number is unreliable, one bullet per contradicting validity check."""
        return tuple(f"unreliable: {u}" for u in finding.details.unreliable) if finding.details is not None else ()

    def residual_risk(self, finding: Finding) -> str:
        d = finding.details
        if d is None or not finding.gating or not d.unreliable:
            return ""
        return (f"The robustness number of '{finding.variant}' is unreliable: "
                f"{'; '.join(u.split(':')[0] for u in d.unreliable)} contradict it, so the real worst case may be "
                f"lower than reported; strengthen the attacks (preset 'thorough') or fix the model's gradients "
                f"before relying on it.")

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
