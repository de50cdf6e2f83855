"""Training health of every variant this audit trained: did the recipe converge to a usable model?

Failures (the variant is NO-GO when it is the candidate, and never "best"): divergence (a non-finite loss),
collapse (near-constant predictions, or clean accuracy near chance) and under-training (a training loss that ended
near chance, clean accuracy far below the baseline's, or a class almost never recognised). Warnings: catastrophic
overfitting caught by the FGSM guard (the best epoch was restored), and robust overfitting (held-out PGD accuracy
fell well below its peak by the last epoch; a warning only when the final weights are the last epoch's). Each
condition names its cause and a remedy. A supplied checkpoint was not trained here: C16 checks it for single-step
overfitting instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attacks.training import EpochRecord
from audit.checks.base import AuditContext, VariantCheck, controls, register
from audit.checks.run_view import TestLogits
from audit.core.result import Details, Measurement, Status

CHANCE_MARGIN = 0.1        # clean accuracy within this of chance is a collapse
CONSTANT_SHARE = 0.9       # one class predicted for this share of the test points is a collapse ...
SKEW_MARGIN = 0.3          # ... unless the test labels are nearly that skewed themselves
ROBUST_DROP = 0.1          # held-out PGD accuracy this far below its peak at the last epoch: robust overfitting
LOSS_CHANCE_MARGIN = 0.1   # a final training loss above (1 - this) * ln(classes) has not left chance: under-training
BASELINE_SHARE = 0.5       # clean accuracy keeping less than this share of the baseline's above chance: under-training
CLASS_RECALL = 0.1         # a class recognised at most this often (and at most at chance, 1/classes) ...
CLASS_MIN_POINTS = 10      # ... among at least this many test points of it: under-training
CE_METHODS = ("none", "pgd", "fgsm", "fgsm_rs")   # whose training loss is a cross-entropy (TRADES adds a KL term)


@dataclass(frozen=True)
class Condition:
    name: str            # "divergence", "collapse", "under-training", "catastrophic overfitting", "robust overfitting"
    status: Status       # PASS, WARN or FAIL
    evidence: str
    remedy: str = ""


@dataclass(frozen=True)
class TrainingHealthDetails(Details):
    conditions: tuple[Condition, ...]
    history: tuple[EpochRecord, ...]
    selected_epoch: int
    epochs: int
    monitor: str
    majority_share: float        # share of test points given the most frequent predicted class
    clean_accuracy: float


def under_training(stats, ok: np.ndarray, y: np.ndarray, k: int, method: str,
                   baseline_accuracy: float | None = None) -> Condition:
    """A run that did not learn enough: the training loss ended near chance (ln k, a uniform prediction; for a
    cross-entropy loss), clean accuracy keeps less than ``BASELINE_SHARE`` of the baseline's above chance, or a
    class with enough test points is recognised at most ``CLASS_RECALL`` (and chance) of the time."""
    reasons = []
    losses = [h.loss for h in stats.history if h.loss is not None]
    chance_loss, chance = math.log(k), 1.0 / k
    if losses and method in CE_METHODS and losses[-1] >= (1 - LOSS_CHANCE_MARGIN) * chance_loss:
        reasons.append(f"the training loss went {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} epoch(s), "
                       f"within {LOSS_CHANCE_MARGIN:.0%} of chance (ln {k} = {chance_loss:.3f}, a uniform guess)")
    acc = float(ok.mean())
    if baseline_accuracy is not None and acc - chance < BASELINE_SHARE * (baseline_accuracy - chance):
        reasons.append(f"clean accuracy {acc:.1%} keeps less than {BASELINE_SHARE:.0%} of the baseline's "
                       f"{baseline_accuracy:.1%} above chance ({chance:.1%})")
    support, hits = np.bincount(y, minlength=k), np.bincount(y[ok], minlength=k)
    limit = min(CLASS_RECALL, chance)
    weak = [c for c in range(k) if support[c] >= CLASS_MIN_POINTS and hits[c] <= limit * support[c]]
    if weak:
        reasons.append("class " + ", ".join(f"{c} recognised on {hits[c] / support[c]:.1%} of its {support[c]} "
                                            f"test points" for c in weak))
    if reasons:
        return Condition("under-training", Status.FAIL, "; ".join(reasons),
                         "train longer (training.epochs), raise the learning rate (training.lr, or schedule "
                         "'onecycle'), check the labels (of a class it never learns, too)")
    return Condition("under-training", Status.PASS, f"the model learned: clean accuracy {acc:.1%}, every class "
                     f"recognised above {limit:.0%}" + (f", final training loss {losses[-1]:.3f} (chance "
                                                         f"{chance_loss:.3f})" if losses else ""))


def conditions(stats, ok: np.ndarray, pred: np.ndarray, y: np.ndarray, k: int, method: str,
               baseline_accuracy: float | None = None) -> list[Condition]:
    """Every training condition of one variant; ``baseline_accuracy``: the baseline's clean accuracy when this
    variant is another one (under-training compares with it)."""
    out = []
    out.append(Condition("divergence", Status.FAIL, stats.stopped_early, "lower training.lr, set grad_clip, or use "
                         "optimizer 'sgd'") if stats.diverged else
               Condition("divergence", Status.PASS, "the training loss stayed finite"))
    acc, share = float(ok.mean()), float(np.bincount(pred, minlength=k).max() / len(pred))
    label_share = float(np.bincount(y, minlength=k).max() / len(y))
    chance = 1.0 / k
    if acc <= chance + CHANCE_MARGIN or (share >= CONSTANT_SHARE and share > label_share + SKEW_MARGIN):
        out.append(Condition("collapse", Status.FAIL, f"clean accuracy {acc:.1%} (chance {chance:.1%}); one class "
                             f"predicted for {share:.1%} of the test points",
                             "a linear eps warm-up (defences.warmup_epochs), a lower training.lr or schedule "
                             "'onecycle', more epochs; check the data's labels and clip range"))
    else:
        out.append(Condition("collapse", Status.PASS, f"clean accuracy {acc:.1%}; the most frequent prediction covers "
                             f"{share:.1%} of the test points"))
        if not stats.diverged:   # a collapse or a divergence already names the failure and its remedy
            out.append(under_training(stats, ok, y, k, method, baseline_accuracy))
    if "catastrophic" in stats.stopped_early:
        out.append(Condition("catastrophic overfitting", Status.WARN, stats.stopped_early,
                             "train with method 'pgd', or 'fgsm_rs' with a longer warm-up or a smaller eps"))
    elif method in ("fgsm", "fgsm_rs"):
        out.append(Condition("catastrophic overfitting", Status.PASS, "the FGSM guard saw no collapse of PGD accuracy"))
    robust = [h.monitor_robust for h in stats.history if h.monitor_robust is not None]
    if robust:
        peak, last = max(robust), robust[-1]
        kept_best = stats.selected_epoch != stats.epochs
        text = (f"held-out PGD accuracy peaked at {peak:.1%} (epoch {robust.index(peak) + 1}) and ended at "
                f"{last:.1%}")
        if peak - last > ROBUST_DROP:
            out.append(Condition("robust overfitting", Status.PASS if kept_best else Status.WARN,
                                 text + ("; the best epoch's weights are kept" if kept_best else ""),
                                 "" if kept_best else "set defences.select = 'best' or train fewer epochs"))
        else:
            out.append(Condition("robust overfitting", Status.PASS, text))
    return out


@register
class TrainingHealth(VariantCheck):
    id = "training_health"
    rank = 30
    title = "Training health (convergence of the trained variants)"
    controls = controls(MEASURE_2_3="supporting", MEASURE_2_7="supporting", MANAGE_1_3="supporting")
    description = ("Divergence, collapse to a constant or chance-level predictor, catastrophic and robust "
                   "overfitting of every variant this audit trained, each with its cause and a remedy.")
    Details = TrainingHealthDetails

    def not_applicable_to(self, ctx: AuditContext, variant: str) -> str:
        if ctx.variants[variant].train_stats is None:
            return ("not trained by this audit (a supplied model); validity check C16 looks for single-step "
                    "overfitting instead")
        return ""

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        v = ctx.variants[variant]
        stats = v.train_stats
        assert stats is not None   # not_applicable_to skips a variant trained elsewhere
        ok = ctx.clean_correct(variant)
        pred = ctx.get(TestLogits, variant).argmax(1).numpy()
        y = ctx.data.y_test.numpy()
        k = ctx.data.num_classes
        method = v.defence.method if v.defence is not None else "none"
        base = None if variant == "baseline" or "baseline" not in ctx.variants else \
            float(ctx.clean_correct("baseline").mean())
        conds = conditions(stats, ok, pred, y, k, method, base)
        failed = [c for c in conds if c.status is Status.FAIL]
        warned = [c for c in conds if c.status is Status.WARN]
        share = float(np.bincount(pred, minlength=k).max() / len(pred))
        summary = ("training failed: " + "; ".join(f"{c.name}: {c.evidence} (remedy: {c.remedy})" for c in failed)
                   if failed else f"converged: {', '.join(c.name for c in conds if c.status is Status.PASS)} fine")
        if warned and not failed:
            summary += "; " + "; ".join(f"{c.name}: {c.evidence}" for c in warned)
        return Measurement(
            check=self.id, variant=variant,
            metrics={"training_failures": float(len(failed)), "training_warnings": float(len(warned)),
                     "majority_prediction_share": share},
            details=TrainingHealthDetails(conditions=tuple(conds), history=stats.history,
                                          selected_epoch=stats.selected_epoch, epochs=stats.epochs,
                                          monitor=stats.monitor, majority_share=share,
                                          clean_accuracy=float(ok.mean())),
            summary=summary, at_best=Status.WARN if warned else None)
