"""Certified robustness: the share of test points *proven* correct everywhere in the threat ball, the lower bound
beside the attacks' upper bound (the robustness check's worst case). Bound propagation (attacks/certify.py: CROWN,
Zhang et al. 2018, with IBP, Gowal et al. 2018, where a layer is too wide) bounds every margin
``logit_y - logit_j`` from below; a point is certified when all are positive.

The truth lies in [certified, empirical]: certified bounds are tight for small or certifiably trained models and
loose (often 0) for large naturally trained ones, so the gap is the honest statement of what is unknown. The
soundness check C17 (audit/checks/validity/c17_soundness.py) compares the certificates with every break of the
run; one certified point an attack broke is a bug in either and makes the finding an ERROR. A model with a layer
bound propagation does not cover is skipped with the layer named; the policy may gate on ``certified_accuracy``
(off by default).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.robustness import ClassRobustness, Robustness, per_class
from audit.checks.run_view import Breaks, RobustnessGrid
from audit.checks.validity.base import ValidityResult
from audit.checks.validity.c17_soundness import Soundness, SoundnessInput
from audit.config.certified import CertifiedConfig
from audit.core.metrics import Accuracy, metric_key, pack_bits, same_eps
from audit.core.result import Details, Finding, Measurement, Status
from audit.methods.certification import Threat, certify_grid, not_certifiable
from audit.methods.seeding import CERTIFIED_POINTS
from audit.methods.worst_case import consolidate

SOUNDNESS = Soundness()


@dataclass(frozen=True)
class CertifiedPoint:
    """One eps: the certified share of the bounded points (95% Wilson interval), the reported worst-case robust
    accuracy of all test points, their gap (empirical - certified) and the seconds the bounds took."""

    eps: float
    certified: float
    ci_low: float
    ci_high: float
    n: int
    empirical: float
    gap: float
    seconds: float
    correct_bits: str = ""   # base64 packbits of per-test-point certification, test order


@dataclass(frozen=True)
class CertifiedDetails(Details):
    method: str                       # "crown" or "ibp"
    norm: str
    points: tuple[CertifiedPoint, ...]
    gated_eps: float
    per_class: tuple[ClassRobustness, ...]
    attacks_counted: int              # the attacks whose breaks the empirical worst case at the gated eps counts
    ibp_layers: tuple[str, ...]       # layers whose pre-activation bounds came from IBP (too wide for CROWN)
    bounded: int                      # test points bounded (every one, or [checks.certified] points)
    soundness: ValidityResult
    band: str = ""                    # "between X% (certified) and Y% (worst of N attacks) at Linf eps e"


def subset(n: int, points: int, seed: int) -> np.ndarray:
    """The test rows to bound: all, or a seeded subsample of ``points``."""
    if not points or points >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(CERTIFIED_POINTS.seed(seed)).choice(n, points, replace=False))


def band(cert: float, empirical: float, n_attacks: int, norm: str, eps: float) -> str:
    return (f"between {cert:.1%} (certified) and {empirical:.1%} (worst of {n_attacks} attack"
            f"{'s' if n_attacks != 1 else ''}) at {norm} eps {eps:g}")


@register
class Certified(VariantCheck):
    id = "certified"
    rank = 45
    title = "Certified robustness (a proven lower bound)"
    controls = controls(MEASURE_2_7="direct", MEASURE_2_13="supporting", MEASURE_1_2="supporting")
    description = ("Share of test points proven correct everywhere in the threat ball (CROWN / IBP bound "
                   "propagation) at every eps, beside the empirical worst case; C17: no certified point broken.")
    Details = CertifiedDetails
    Config = CertifiedConfig
    requires = (Robustness,)
    by_default = False   # CROWN costs about as much as the attack grid on the demo: enable it in [checks] enabled

    def not_applicable_to(self, ctx: AuditContext, variant: str) -> str:
        return not_certifiable(ctx.variants[variant].model, ctx.data.x_test[:2].to(ctx.device))

    def cost(self, sheet: CostSheet, variant: str) -> None:
        cfg = sheet.config.certified
        n = min(cfg.points or sheet.n_test, sheet.n_test)
        # CROWN back-substitutes every unstable neuron of every layer: about a backward pass per neuron chunk
        per_eps = 2.0 * n if cfg.method == "ibp" else 40.0 * n
        sheet.add(f"check {self.id}:{variant}", per_eps * len(sheet.config.attacks.eps), 0.0)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        cfg: CertifiedConfig = ctx.config.certified
        d, a = ctx.data, ctx.config.attacks
        rows = subset(len(d.y_test), cfg.points, ctx.config.seed)
        clean = ctx.clean_correct(variant)
        with ctx.stage(f"certify:{variant}"):
            threat = Threat(tuple(a.eps), a.norm.value, d.attack_clip, cfg.method, cfg.batch_size)
            cert = certify_grid(ctx.variants[variant].model, d.x_test, d.y_test, threat, subset=rows, clean_ok=clean,
                                stage=lambda e: ctx.stage(f"certify eps {e}:{variant}"))
        worst = consolidate(ctx.get(RobustnessGrid, variant).correct, ctx.computed(Breaks, variant), clean)
        sound = SOUNDNESS.evaluate_certificates(SoundnessInput(cert.certified, worst.robust, worst.sources, clean))
        reported = {w.eps: w.value for w in worst.points}
        points, metrics = [], {}
        for eps, mask in cert.certified.items():
            acc = Accuracy.of(mask[rows])
            emp = next(v for e, v in reported.items() if same_eps(e, eps))
            points.append(CertifiedPoint(eps=eps, certified=acc.value, ci_low=acc.ci_low, ci_high=acc.ci_high,
                                         n=acc.n, empirical=emp, gap=emp - acc.value, seconds=cert.seconds[eps],
                                         correct_bits=pack_bits(mask)))
            metrics[metric_key("certified_accuracy", eps)] = acc.value
            metrics[metric_key("certified_gap", eps)] = emp - acc.value
        metrics["soundness_violations"] = float(sound.values.get("violations", 0))
        gated = next(p for p in points if same_eps(p.eps, ctx.gated_eps))
        n_attacks = len(next(s for e, s in worst.sources.items() if same_eps(e, gated.eps)))
        text = band(gated.certified, gated.empirical, n_attacks, a.norm.label, gated.eps)
        details = CertifiedDetails(method=cfg.method, norm=a.norm.value, points=tuple(points), gated_eps=gated.eps,
                                   per_class=per_class(ctx, cert.certified, rows), attacks_counted=n_attacks,
                                   ibp_layers=cert.ibp_layers, bounded=int(rows.size), soundness=sound, band=text)
        summary = (f"{text}: the unknown gap is {gated.gap:.1%} ({cfg.method.upper()} on {rows.size} test points"
                   + (f"; layers bounded by IBP alone: {', '.join(cert.ibp_layers)}" if cert.ibp_layers else "")
                   + ")")
        error = f"{SOUNDNESS.id} {SOUNDNESS.name}: {sound.evidence}" if sound.status is Status.FAIL else None
        return Measurement(check=self.id, variant=variant, metrics=metrics, details=details, summary=summary,
                           error=error)

    def gates_from_any_variant(self, m: Measurement) -> bool:
        """An unsound certificate (C17) on any variant is a bug in the certifier or the attacks of this run."""
        d = m.details
        return isinstance(d, CertifiedDetails) and d.soundness.status is Status.FAIL

    def notes(self, finding: Finding) -> tuple[str, ...]:
        d = finding.details
        if d is None:
            return ()
        out = [f"{d.soundness.id} {d.soundness.name}: {d.soundness.evidence}"]
        if d.ibp_layers:
            out.append(f"too wide for CROWN within its memory bound, bounded by IBP: {', '.join(d.ibp_layers)}")
        return tuple(out)

    def residual_risk(self, finding: Finding) -> str:
        d = finding.details
        if d is None or not finding.gating:
            return ""
        gated = next((p for p in d.points if same_eps(p.eps, d.gated_eps)), None)
        if gated is None or gated.gap <= 0:
            return ""
        return (f"Robust accuracy of '{finding.variant}' is proven only down to {gated.certified:.1%} at eps "
                f"{gated.eps:g}; {gated.gap:.1%} of the test points are neither broken by the run's attacks nor "
                f"proven robust, so a stronger attack could still break them.")
