"""Deployment variants: what int8 quantisation, half-precision casts and pruning do to the shipped model's size,
latency, clean accuracy, calibration, corruption accuracy and robustness at the threat eps, against its source.

Robustness of a deployment is the per-example worst case over every attack that can reach it: the source's PGD
examples transferred, white-box PGD on the deployment when it is differentiable (casts, pruned models), white-box
PGD through a straight-through fake-quant stand-in when it is quantised (no gradients of its own), and Square
(gradient-free), each on every clean-correct point. The source is measured with the same white-box PGD and Square, so a
quantised model whose gradients vanish cannot look more robust than query and transfer attacks show.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.pgd import pgd
from attacks.square import square
from audit.checks.base import AuditContext, RunCheck, controls, register
from audit.checks.run_view import Breaks
from audit.core.metrics import Accuracy
from audit.core.result import Details, Measurement, Status
from audit.core.stats import expected_calibration_error, mcnemar_exact
from audit.methods.compression import cast, dynamic_int8, latency_ms, prune_global, size_bytes, sparsity, static_int8
from audit.methods.corruptions import corruption_errors
from audit.methods.fake_quant import ste_surrogate
from audit.methods.seeding import DEPLOY_PGD, DEPLOY_SQUARE

LATENCY_BATCH = 64
MASKING_MARGIN = 0.05  # white-box accuracy this far above the transfer/Square one: gradient masking suspected


@dataclass(frozen=True)
class DeploymentRow:
    name: str
    method: str
    source: str
    backend: str
    size_bytes: int
    size_ratio: float              # deployment / source
    sparsity: float
    latency_ms: float              # one forward pass of a 64-row batch, CPU, median of 7
    latency_ratio: float           # deployment / source
    clean: Accuracy
    robust: Accuracy               # worst case over the attacks below, at eps
    robust_by_attack: dict[str, float]
    ece: float
    corruption_accuracy: float
    clean_drop: float              # source - deployment, in accuracy (positive = worse)
    robust_drop: float
    clean_p_value: float           # paired exact McNemar against the source
    robust_p_value: float
    note: str = ""


@dataclass(frozen=True)
class DeploymentsDetails(Details):
    eps: float
    norm: str
    rows: tuple[DeploymentRow, ...]
    sources: dict[str, dict[str, float]]   # source -> clean, robust, size_bytes, latency_ms, ece
    failed: dict[str, str]                 # deployment -> why it could not be built or measured


@register
class Deployments(RunCheck):
    id = "deployments"
    rank = 100
    title = "Deployment variants (quantisation, half precision, pruning)"
    controls = controls(MEASURE_2_5="direct", MEASURE_2_7="supporting", MANAGE_2_4="supporting")
    description = ("Each [[deployments]] entry derived from its source variant: size, sparsity, CPU latency, clean "
                   "and robust accuracy (worst case over transfer, white-box or fake-quant white-box, and Square), "
                   "ECE and corruption accuracy, with paired McNemar tests against the source.")
    Details = DeploymentsDetails

    def not_applicable(self, ctx: AuditContext) -> str:
        if not ctx.config.deployments:
            return "no [[deployments]] declared"
        if ctx.data.kind != "image":
            return "deployment robustness uses Square, which perturbs images"
        return ""

    def measure(self, ctx: AuditContext) -> Measurement:
        eps = ctx.gated_eps
        d = ctx.data
        cpu = torch.device("cpu")
        x, y = d.x_test, d.y_test
        rows, failed, sources = [], {}, {}
        evidence = {}
        for dep in ctx.config.deployments:
            src = dep.source or ctx.config.candidate
            if src not in evidence:
                with ctx.stage(f"deployment source {src}"):
                    evidence[src] = self._measure_source(ctx, src, eps)
                sources[src] = evidence[src]["summary"]
            with ctx.stage(f"deployment {dep.name}"):
                try:
                    rows.append(self._measure(ctx, dep, src, evidence[src], eps, cpu, x, y))
                except Exception as e:  # noqa: BLE001 - one deployment that cannot be built does not stop the rest
                    failed[dep.name] = f"{type(e).__name__}: {e}"
        worst = max([max(r.clean_drop, r.robust_drop) for r in rows], default=0.0)
        metrics = {"worst_drop": worst, "failed_deployments": float(len(failed))}
        for r in rows:
            metrics[f"clean_drop:{r.name}"] = r.clean_drop
            metrics[f"robust_drop:{r.name}"] = r.robust_drop
        norm = str(getattr(ctx.config.attacks.norm, "value", ctx.config.attacks.norm))
        details = DeploymentsDetails(eps=eps, norm=norm, rows=tuple(rows), sources=sources, failed=failed)
        parts = [f"{r.name}: size x{r.size_ratio:.2f}, latency x{r.latency_ratio:.2f}, clean {r.clean.value:.1%} "
                 f"({-r.clean_drop:+.1%}), robust {r.robust.value:.1%} ({-r.robust_drop:+.1%})" for r in rows]
        parts += [f"{name}: failed ({why})" for name, why in failed.items()]
        return Measurement(check=self.id, variant=None, metrics=metrics, details=details,
                           at_best=Status.WARN if failed else None,  # a deployment not measured is not a pass
                           summary=f"at {norm} eps {eps:g}: " + "; ".join(parts) + f"; worst drop {worst:.1%}")

    # --- the source, once ---------------------------------------------------------------------------------------
    def _measure_source(self, ctx: AuditContext, src: str, eps: float) -> dict:
        model = ctx.variants[src].model
        x, y = ctx.data.x_test, ctx.data.y_test
        clean, ece = self._clean(model, x, y, ctx.device)
        adv = self._pgd(ctx, model, x, y, eps, ctx.device)
        white = self._predict(model, adv, ctx.device) == y.numpy()
        sq = self._square(ctx, model, x, y, eps, clean, ctx.device)
        robust = clean & white & sq
        ledger, everyone, p = ctx.get(Breaks, src), np.arange(len(clean)), ctx.config.attacks.params
        ledger.add(f"deployments: PGD-{p('pgd')['steps']} on the source", self.id, eps, everyone, clean, ~white)
        ledger.add(f"deployments: Square ({p('square')['queries']:,} queries) on the source", self.id, eps,
                   everyone, clean, ~sq)
        copy_ = ctx.models.copy_model(ctx.variants[src]).cpu().eval()
        size, latency = size_bytes(copy_), latency_ms(copy_, x[:LATENCY_BATCH].cpu())
        return {"adv": adv, "clean": clean, "robust": robust, "size": size, "latency": latency,
                "summary": {"clean": float(clean.mean()), "robust": float(robust.mean()), "size_bytes": float(size),
                            "latency_ms": latency, "ece": ece}}

    # --- one deployment ------------------------------------------------------------------------------------------
    def _build(self, ctx: AuditContext, dep, src: str):
        """(deployed model, where it runs, backend, differentiable stand-in or None, note)."""
        source = ctx.models.copy_model(ctx.variants[src]).eval()
        if dep.method == "dynamic_int8":
            m, backend = dynamic_int8(source)
            return m, torch.device("cpu"), backend, ste_surrogate(source, static=False), ""
        if dep.method == "static_int8":
            calib = ctx.data.x_train[:dep.calibration_rows]
            m, backend = static_int8(source, torch.as_tensor(np.asarray(calib)) if not isinstance(
                calib, torch.Tensor) else calib)
            return m, torch.device("cpu"), backend, ste_surrogate(source, static=True), ""
        if dep.method in ("fp16", "bf16"):
            dtype = torch.float16 if dep.method == "fp16" else torch.bfloat16
            return cast(source, dtype).to(ctx.device), ctx.device, f"torch cast to {dtype}", None, ""
        finetune = None
        if dep.finetune_epochs:
            def finetune(m):
                ctx.models.finetune(m, ctx.variants[src], dep.finetune_epochs)
        m = prune_global(source, dep.sparsity, finetune)
        note = f"fine-tuned {dep.finetune_epochs} epoch(s) with the source's recipe" if dep.finetune_epochs else \
            "not fine-tuned"
        return m.to(ctx.device), ctx.device, "torch.nn.utils.prune.global_unstructured (L1)", None, note

    def _measure(self, ctx: AuditContext, dep, src: str, ev: dict, eps: float, cpu, x, y) -> DeploymentRow:
        model, where, backend, surrogate, note = self._build(ctx, dep, src)
        yn = y.numpy()
        clean, ece = self._clean(model, x, y, where)
        by_attack = {"transfer from source": self._predict(model, ev["adv"], where) == yn}
        if surrogate is None:
            by_attack["white-box PGD"] = self._predict(model, self._pgd(ctx, model, x, y, eps, where), where) == yn
        else:
            adv = self._pgd(ctx, surrogate.to(ctx.device), x, y, eps, ctx.device)
            by_attack["white-box PGD via fake-quant STE"] = self._predict(model, adv, where) == yn
        by_attack["Square"] = self._square(ctx, model, x, y, eps, clean, where)
        robust = clean & np.logical_and.reduce(list(by_attack.values()))
        acc = {k: float((clean & v).mean()) for k, v in by_attack.items()}
        gradient_based = [v for k, v in acc.items() if "white-box" in k]
        others = [v for k, v in acc.items() if "white-box" not in k]
        if gradient_based and others and gradient_based[0] > min(others) + MASKING_MARGIN:
            note = (note + "; " if note else "") + (f"gradient masking suspected: white-box {gradient_based[0]:.1%} "
                                                    f"above transfer/Square {min(others):.1%}")
        cpu_model = model if where.type == "cpu" else model.to(cpu)
        lat = latency_ms(cpu_model, x[:LATENCY_BATCH].cpu())
        size = size_bytes(cpu_model)
        if where.type != "cpu":
            model.to(where)
        err = corruption_errors(model, x, y, clip=ctx.data.attack_clip, kind=ctx.data.kind,
                                seed=ctx.config.seed, device=where)
        return DeploymentRow(
            name=dep.name, method=dep.method, source=src, backend=backend, size_bytes=size,
            size_ratio=size / max(ev["size"], 1), sparsity=sparsity(cpu_model), latency_ms=lat,
            latency_ratio=lat / max(ev["latency"], 1e-9), clean=Accuracy.of(clean), robust=Accuracy.of(robust),
            robust_by_attack=acc, ece=ece,
            corruption_accuracy=1 - float(np.mean(list(err.values()))),
            clean_drop=float(ev["clean"].mean() - clean.mean()), robust_drop=float(ev["robust"].mean() - robust.mean()),
            clean_p_value=_mcnemar(ev["clean"], clean), robust_p_value=_mcnemar(ev["robust"], robust), note=note)

    # --- helpers ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _logits(model, x, device, bs: int = 512) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(x[i:i + bs].to(device)).float().cpu() for i in range(0, x.shape[0], bs)])

    def _predict(self, model, x, device) -> np.ndarray:
        return self._logits(model, x, device).argmax(1).numpy()

    def _clean(self, model, x, y, device) -> tuple[np.ndarray, float]:
        """Clean correctness per test point and the ECE, from one pass over the test split."""
        conf, pred = torch.softmax(self._logits(model, x, device), 1).max(1)
        correct = (pred == y).numpy()
        return correct, float(expected_calibration_error(conf.numpy(), correct))

    def _pgd(self, ctx: AuditContext, model, x, y, eps, device) -> torch.Tensor:
        a = ctx.config.attacks
        out = []
        for i in range(0, x.shape[0], a.batch_size):
            xb, yb = x[i:i + a.batch_size].to(device), y[i:i + a.batch_size].to(device)
            gen = torch.Generator(device=device).manual_seed(DEPLOY_PGD.seed(ctx.config.seed, i))
            out.append(pgd(model, xb, yb, eps=eps, norm=a.norm, clip=ctx.data.attack_clip, steps=a.params("pgd")[
                "steps"], generator=gen).x_adv.float().cpu())
        return torch.cat(out)

    def _square(self, ctx: AuditContext, model, x, y, eps, rows: np.ndarray, device) -> np.ndarray:
        """Correct after Square on ``rows`` (the others are returned as they are: True)."""
        a = ctx.config.attacks
        ok = np.ones(len(rows), dtype=bool)
        idx = np.flatnonzero(rows)
        p = a.params("square")
        for i in range(0, len(idx), a.batch_size):
            sel = torch.from_numpy(idx[i:i + a.batch_size])
            xb, yb = x[sel].to(device), y[sel].to(device)
            gen = torch.Generator(device=device).manual_seed(DEPLOY_SQUARE.seed(ctx.config.seed, i))
            adv = square(model, xb, yb, eps=eps, norm=a.norm, clip=ctx.data.attack_clip, queries=p["queries"],
                         p_init=p["p_init"], generator=gen).x_adv
            ok[idx[i:i + a.batch_size]] = self._predict(model, adv, device) == yb.cpu().numpy()
        return ok


def _mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    return float(mcnemar_exact(int((a & ~b).sum()), int((~a & b).sum())))
