"""Validity gates C1-C15 on the attack evaluation (Carlini et al. 2019; REFERENCE section 4): is the robustness
number trustworthy? Each gate is reported with its status and evidence; ``violations`` counts failed gates (the
policy gates on it) and a warning gate makes the finding at best a warning."""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from audit.checks.base import controls
from audit.checks.robustness import gated_eps, robustness_eval
from audit.context import Context
from audit.gates import GATES, GateResult, Probe, worst
from audit.result import Measurement, Status
from audit.serde import to_data

log = logging.getLogger(__name__)


def reference_of(ctx: Context):
    """(name, grid) of a naturally trained variant of this run, or (None, why there is none)."""
    for name, v in ctx.variants.items():
        natural = v.train_stats is not None and (v.defence is None or (
            v.defence.method == "none" and not v.defence.mixup_alpha and not v.defence.input_noise))
        if natural:
            return (name, robustness_eval(ctx, name)), ""
    return None, "no variant of this run was naturally trained here (the baseline is the supplied model)"


def build_probe(ctx: Context, variant: str) -> Probe:
    a = ctx.config.attacks
    n_test = ctx.data.x_test.shape[0]
    n = min(a.probe_points, n_test)
    idx = np.sort(np.random.default_rng(ctx.config.seed + 3).choice(n_test, n, replace=False))
    sel = torch.from_numpy(idx)
    clip = ctx.data.attack_clip
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(ctx.device), clip[1].to(ctx.device))
    ref, why = reference_of(ctx)
    v = ctx.variants[variant]
    return Probe(model=v.model, grid=robustness_eval(ctx, variant), settings=a, idx=idx,
                 x=ctx.data.x_test[sel].to(ctx.device), y=ctx.data.y_test[sel].to(ctx.device), clip=clip,
                 device=ctx.device, num_classes=ctx.data.num_classes, seed=ctx.config.seed, eps=gated_eps(ctx),
                 range_width=ctx.data.range_width, kind=ctx.data.kind, reference=ref,
                 defence=v.defence)


def run_gates(probe: Probe, gates=None) -> list[GateResult]:
    out = []
    for gid, gate in (gates or GATES).items():
        start = time.perf_counter()
        try:
            out.append(dataclasses.replace(gate(probe), seconds=round(time.perf_counter() - start, 3)))
        except Exception as e:  # a gate that cannot run is reported, never silently passed
            log.warning("gate %s failed to run: %s", gid, e)
            out.append(GateResult(gid, gid, "fail", f"the gate could not run: {type(e).__name__}: {e}"))
    return out


class AttackValidity:
    id = "attack_validity"
    title = "Attack validity (is the robustness number trustworthy?)"
    scope = "variant"
    controls = controls(MEASURE_2_13="direct", MEASURE_1_2="supporting")
    description = ("Gates C1-C15: monotone in eps, iterative beats single-step, convergence, unbounded attack "
                   "reaches chance, noise weaker than attack, black-box not stronger, gradient health, "
                   "determinism, logits, perturbation validity, undefended reference, worst case, eps units, "
                   "catastrophic overfitting, true labels.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        probe = build_probe(ctx, variant)
        results = run_gates(probe)
        failed = [r for r in results if r.status == "fail"]
        warned = [r for r in results if r.status == "warn"]
        problems = [f"{r.id} {r.name}: {r.evidence}" for r in failed + warned]
        skipped = probe.grid.skipped
        summary = (f"{len(results) - len(failed) - len(warned)} of {len(results)} gates pass or do not apply"
                   + (f"; {len(failed)} fail ({', '.join(r.id for r in failed)})" if failed else "")
                   + (f"; {len(warned)} warn ({', '.join(r.id for r in warned)})" if warned else ""))
        return Measurement(
            check=self.id, variant=variant,
            metrics={"violations": float(len(failed)), "gate_warnings": float(len(warned)),
                     "max_norm_ratio": probe.grid.validity.max_norm_ratio},
            details={"gates": to_data(results), "problems": problems, "probe_points": len(probe.idx),
                     "probe_eps": probe.eps, "skipped_attacks": skipped},
            summary=summary, at_best=Status.WARN if worst(results) == "warn" else None)
