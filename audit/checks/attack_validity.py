"""Validity checks C1-C16 on the attack evaluation (Carlini et al. 2019; REFERENCE section 4): is the robustness
number trustworthy? Each validity check is reported with its status and evidence; ``validity_failures`` counts
the failed ones (the policy judges it) and a warning makes the finding at best a warning."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.run_view import Breaks, RobustnessGrid
from audit.checks.validity import VALIDITY_CHECKS, Probe, ValidityResult, worst
from audit.checks.validity.c11_reference import declared_reference
from audit.core.result import Details, Finding, Measurement, Status
from audit.methods.seeding import PROBE_POINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttackValidityDetails(Details):
    validity_checks: tuple[ValidityResult, ...]
    problems: tuple[str, ...]          # "C6 black-box ...: evidence" for every failed or warning check
    probe_points: int
    probe_eps: float
    skipped_attacks: dict[str, str]


def reference_of(ctx: AuditContext):
    """(name, grid) of a naturally trained variant of this run, or (None, why there is none)."""
    for name, v in ctx.variants.items():
        natural = v.train_stats is not None and (v.defence is None or (
            v.defence.method == "none" and not v.defence.mixup_alpha and not v.defence.input_noise))
        if natural:
            return (name, ctx.get(RobustnessGrid, name)), ""
    return declared_reference(ctx)   # the supplied baseline when the config declares it naturally trained


def build_probe(ctx: AuditContext, variant: str) -> Probe:
    a = ctx.config.attacks
    n_test = ctx.data.x_test.shape[0]
    n = min(a.probe_points, n_test)
    idx = np.sort(np.random.default_rng(PROBE_POINTS.seed(ctx.config.seed)).choice(n_test, n, replace=False))
    sel = torch.from_numpy(idx)
    clip = ctx.data.attack_clip
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(ctx.device), clip[1].to(ctx.device))
    ref, why = reference_of(ctx)
    v = ctx.variants[variant]
    return Probe(model=v.model, grid=ctx.get(RobustnessGrid, variant), settings=a, idx=idx,
                 x=ctx.data.x_test[sel].to(ctx.device), y=ctx.data.y_test[sel].to(ctx.device), clip=clip,
                 device=ctx.device, num_classes=ctx.data.num_classes, seed=ctx.config.seed, eps=ctx.gated_eps,
                 range_width=ctx.data.range_width, thresholds=ctx.policy.validity, kind=ctx.data.kind,
                 reference=ref, reference_reason=why, training=v.train_stats, defence=v.defence)


def run_validity_checks(probe: Probe, checks=None, stage=None) -> list[ValidityResult]:
    """Every validity check on ``probe``; ``stage(id)`` (a context manager) times each one in the run record."""
    out = []
    for cid, check in (checks or VALIDITY_CHECKS).items():
        start = time.perf_counter()
        try:
            with stage(cid) if stage is not None else contextlib.nullcontext():
                result = check.evaluate(probe)
            out.append(dataclasses.replace(result, seconds=round(time.perf_counter() - start, 3)))
            probe.results[cid] = out[-1]
        except Exception as e:  # a validity check that cannot run is reported, never silently passed
            log.warning("validity check %s could not run: %s", cid, e)
            out.append(ValidityResult(cid, check.name, Status.FAIL, f"the validity check could not run: "
                                      f"{type(e).__name__}: {e}"))
    return out


@register
class AttackValidity(VariantCheck):
    id = "attack_validity"
    rank = 50
    title = "Attack validity (is the robustness number trustworthy?)"
    controls = controls(MEASURE_2_13="direct", MEASURE_1_2="supporting")
    description = ("Validity checks C1-C16: monotone in eps, iterative beats single-step, convergence, unbounded "
                   "attack reaches chance, noise weaker than attack, black-box not stronger, gradient health, "
                   "determinism, logits, perturbation validity, undefended reference, worst case, eps units, "
                   "catastrophic overfitting, true labels, single-step / iterative gap.")
    Details = AttackValidityDetails

    def notes(self, finding: Finding) -> tuple[str, ...]:
        """The validity problems, one bullet each."""
        return tuple(finding.details.problems) if finding.details is not None else ()

    def cost(self, sheet: CostSheet, variant: str) -> None:
        a = sheet.config.attacks
        probe = min(a.probe_points, sheet.n_test)
        sheet.add(f"check {self.id}:{variant}", probe * (3 * a.pgd_steps + 10), 0.0)
        sq = 0 if "square" in a.attacks else min(a.square_points, probe) * a.square_queries
        sheet.add(f"  validity probes (forward):{variant}", 0.0, sq + 40 * probe,
                  fwd_cost=sheet.costs.small_forward_row)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        probe = build_probe(ctx, variant)
        results = run_validity_checks(probe, stage=lambda cid: ctx.stage(f"validity {cid}:{variant}"))
        ledger = ctx.get(Breaks, variant)
        for source, eps, attacked, broken in probe.breaks:   # the probes' breaks count in the worst case
            ledger.add(f"{source} (validity probe)", self.id, eps, probe.idx, attacked, broken)
        failed = [r for r in results if r.status is Status.FAIL]
        warned = [r for r in results if r.status is Status.WARN]
        summary = (f"{len(results) - len(failed) - len(warned)} of {len(results)} validity checks pass or do not "
                   f"apply" + (f"; {len(failed)} fail ({', '.join(r.id for r in failed)})" if failed else "")
                   + (f"; {len(warned)} warn ({', '.join(r.id for r in warned)})" if warned else ""))
        return Measurement(
            check=self.id, variant=variant,
            metrics={"validity_failures": float(len(failed)), "validity_warnings": float(len(warned)),
                     "max_norm_ratio": probe.grid.validity.max_norm_ratio},
            details=AttackValidityDetails(validity_checks=tuple(results),
                                          problems=tuple(f"{r.id} {r.name}: {r.evidence}" for r in failed + warned),
                                          probe_points=len(probe.idx), probe_eps=probe.eps,
                                          skipped_attacks=dict(probe.grid.skipped)),
            summary=summary, at_best=Status.WARN if worst(results) is Status.WARN else None)
