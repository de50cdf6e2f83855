"""Backdoor screening of the training data on the baseline's penultimate-layer activations, with a self-test that
plants a known backdoor in a copy of the user's data and measures each detector's recall and false-positive rate.

Label-issue and duplicate detectors do not see backdoor poisons: their labels look right to a model that learnt
the trigger (REFERENCE section 6). The detectors (audit/detectors/backdoor.py) are activation clustering through
ART's ActivationDefence with an analysis that does not flag clean classes, a centroid-distance ratio, and a centred
spectral-signature score. Evidence for NIST AI 100-2 §2.3.3 (backdoor poisoning; training-data sanitisation),
MITRE ATLAS AML.M0007 / AML.M0008, EU AI Act Art. 15(5).

Self-test: ART's all-to-all convention (rows of class t-1 carry the trigger and are relabelled t, making ``rate``
of each class t), the trigger ART's ``add_pattern_bd`` (images) or fixed values in the last features (tables);
the audited architecture is trained on the poisoned copy with the run's budget, the attack success rate on the
triggered test split shows the backdoor took, and the same screen runs on that model's activations.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from attacks.training import train
from audit.checks.base import controls
from audit.context import Context
from audit.detectors.backdoor import (ScreenSettings, add_trigger, auroc, poison_plan, rates, recall_at_fpr,
                                      screen)
from audit.embeddings import embedding_unavailable, penultimate, train_embedding
from audit.result import Measurement, Status

MAX_LISTED = 25
WEAK_RECALL = 0.5
MIN_ASR = 0.5


def _settings(ctx: Context) -> ScreenSettings:
    """The detector's settings: the [backdoor] config's fields of the same names, and the run's seed."""
    c = ctx.config.backdoor
    named = {f.name: getattr(c, f.name) for f in dataclasses.fields(ScreenSettings) if f.name != "seed"}
    return ScreenSettings(seed=ctx.config.seed, **named)


def _trigger_value(ctx: Context) -> float:
    if ctx.data.kind == "image":
        hi = ctx.data.attack_clip[1]
        return float(hi.max()) if isinstance(hi, torch.Tensor) else float(hi)
    return float(ctx.data.x_train.max())


def self_test(ctx: Context, settings: ScreenSettings) -> dict:
    """Plant an all-to-all backdoor in a copy of the training split, train the architecture on it, screen it."""
    cfg = ctx.config.backdoor
    d = ctx.data
    k = d.num_classes
    y = d.y_train.numpy()
    rows, new_labels = poison_plan(y, k, cfg.selftest_rate, ctx.config.seed + 202)
    value = _trigger_value(ctx)
    x = d.x_train.numpy().copy()
    x[rows] = add_trigger(x[rows], d.kind, value)
    yp = y.copy()
    yp[rows] = new_labels
    truth = np.zeros(len(y), dtype=bool)
    truth[rows] = True
    t = ctx.config.training
    ctx.seed_everything(offset=202)
    model = ctx.build_model()
    epochs = cfg.selftest_epochs or t.epochs
    train(model, torch.from_numpy(x), torch.from_numpy(yp), epochs=epochs, batch_size=t.batch_size, lr=t.lr,
          seed=ctx.config.seed + 202, desc="backdoor self-test")
    # attack success: test rows of each source class, triggered, predicted as that class's target
    yt = d.y_test.numpy()
    xt = add_trigger(d.x_test.numpy(), d.kind, value)
    pred = ctx.logits(model, torch.from_numpy(xt)).argmax(1).numpy()
    clean_pred = ctx.logits(model, d.x_test).argmax(1).numpy()
    asr = float((pred == (yt + 1) % k).mean()) if k > 1 else float("nan")
    e = penultimate(model, torch.from_numpy(x), device=ctx.device).numpy()
    s = screen(e, yp, settings)
    detectors = {name: rates(flag, truth) for name, flag in s.detectors().items()}
    ranking = {name: {"auroc": auroc(score, truth), "recall_at_fpr_0.1": recall_at_fpr(score, truth, 0.1)}
               for name, score in (("centroid_ratio", s.ratio), ("spectral_signature", s.spectral),
                                   ("screen_score", s.score))}
    return {"rate": cfg.selftest_rate, "poisoned_rows": int(truth.sum()), "rows": int(len(y)),
            "trigger": "ART add_pattern_bd (corner pattern, every channel)" if d.kind == "image" and x.ndim == 4
            else "last 3 features set to the training maximum",
            "trigger_value": value, "epochs": epochs, "attack_success_rate": asr,
            "clean_accuracy": float((clean_pred == yt).mean()), "detectors": detectors, "ranking": ranking,
            "classes_flagged": [c["class"] for c in s.classes if c["flagged"]],
            "note": "all-to-all backdoor (class t-1 with the trigger relabelled t) in a copy of the training split; "
                    "recall on the planted rows, false-positive rate on the copy's untouched rows"}


class BackdoorScreen:
    id = "backdoor"
    title = "Backdoor screening (activation clustering, centroid ratio, spectral signature)"
    scope = "data"
    controls = controls(MEASURE_2_7="direct", MAP_2_3="supporting", MEASURE_2_5="supporting",
                        MEASURE_1_2="supporting")
    description = ("Per-class screening of the baseline's penultimate activations: ART ActivationDefence clustering "
                   "(seeded, an analysis that leaves clean classes alone), a centroid-distance ratio and a centred "
                   "spectral signature; a self-test that plants a pattern backdoor in a copy of the data.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        cfg = ctx.config.backdoor
        d = ctx.data
        why = embedding_unavailable(ctx)
        if why:
            return Measurement(check=self.id, skipped=why)
        e = train_embedding(ctx)
        if d.num_classes < 2:
            return Measurement(check=self.id, skipped="one class: a backdoor needs a target class")
        settings = _settings(ctx)
        y = d.y_train.numpy()
        s = screen(e, y, settings)
        names = d.class_names
        flagged = s.flagged
        order = np.argsort(-s.score)
        classes = [c | {"class": names[c["class"]]} for c in s.classes]
        suspicious = [c["class"] for c in classes if c["flagged"]]
        details = {
            "rows": int(len(y)), "dimensions": int(e.shape[1]), "model": "baseline (penultimate layer)",
            "settings": {"ratio_z": settings.ratio_z, "spectral_z": settings.spectral_z,
                         "min_silhouette": settings.min_silhouette, "max_cluster_share": settings.max_cluster_share,
                         "min_cluster_ratio_z": settings.min_cluster_ratio_z, "pca_dims": settings.nb_dims},
            "classes": classes, "suspicious_classes": suspicious,
            "detector_flags": {k: int(v.sum()) for k, v in s.detectors().items()},
            "top_rows": [{"row": int(i), "label": names[y[i]], "ratio_z": round(float(s.ratio_z[i]), 3),
                          "spectral_z": round(float(s.spectral_z[i]), 3), "clustered": bool(s.clustered[i])}
                         for i in order[:MAX_LISTED] if flagged[i]],
            "flagged": [{"row": int(i), "ratio_z": round(float(s.ratio_z[i]), 3),
                         "spectral_z": round(float(s.spectral_z[i]), 3), "clustered": bool(s.clustered[i])}
                        for i in np.flatnonzero(flagged)],
        }
        rate = float(flagged.mean())
        metrics = {"backdoor_flag_rate": rate, "suspicious_classes": float(len(suspicious)),
                   "flagged_rows": float(flagged.sum())}
        at_best = None
        summary = (f"{int(flagged.sum())} of {len(y)} training rows flagged ({rate:.1%}); "
                   f"{len(suspicious)} class(es) with a suspicious activation cluster"
                   + (f" ({', '.join(suspicious)})" if suspicious else ""))
        why_no_test = self._why_no_self_test(ctx)
        if why_no_test:
            details["selftest_skipped"] = why_no_test
        else:
            st = self_test(ctx, settings)
            details["selftest"] = st
            r = st["detectors"]["screen"]
            metrics.update(selftest_recall=r["recall"], selftest_false_positive_rate=r["false_positive_rate"],
                           selftest_attack_success_rate=st["attack_success_rate"])
            summary += (f"; self-test with a {st['rate']:.0%} pattern backdoor (attack success "
                        f"{st['attack_success_rate']:.0%}): recall {r['recall']:.0%} at false-positive rate "
                        f"{r['false_positive_rate']:.1%}")
            if st["attack_success_rate"] < MIN_ASR:
                at_best = Status.WARN
                summary += " (the planted backdoor did not take; the self-test is inconclusive)"
            elif r["recall"] < WEAK_RECALL:
                at_best = Status.WARN
                summary = "SCREEN WEAK ON THIS DATA: " + summary
        return Measurement(check=self.id, metrics=metrics, details=details, summary=summary, at_best=at_best)

    def _why_no_self_test(self, ctx: Context) -> str:
        cfg = ctx.config.backdoor
        if cfg.selftest_rate <= 0:
            return "backdoor.selftest_rate = 0"
        if not ctx.can_train:
            return "the self-test trains the architecture on a poisoned copy; an archive cannot be retrained"
        if ctx.data.lazy:
            return "the data is read lazily; the self-test needs an in-memory poisoned copy"
        return ""
