"""Calibration metrics and post-hoc recalibration of a classifier's probabilities.

Metrics on (probabilities, labels): ECE with equal-width and equal-mass bins (Guo et al. 2017; Nixon et al.
2019), MCE, Brier score, NLL, and the reliability table. Recalibration maps are fitted on held-out logits:
temperature scaling (one scalar), vector scaling (a Platt-style per-class scale and bias), and isotonic regression
of the top-label confidence (Zadrozny & Elkan 2002).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from audit.core.stats import equal_width_bins, expected_calibration_error

BINS = 15


def _bins(conf: np.ndarray, mass: bool) -> list[np.ndarray]:
    if conf.size == 0:
        return []
    if mass:
        order = np.argsort(conf, kind="stable")
        return [b for b in np.array_split(order, BINS) if b.size]
    idx = equal_width_bins(conf, BINS)
    return [np.flatnonzero(idx == b) for b in range(BINS) if (idx == b).any()]


def calibration_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    conf, pred = probs.max(1), probs.argmax(1)
    correct = (pred == labels).astype(float)
    gaps = [(b.size, abs(correct[b].mean() - conf[b].mean())) for b in _bins(conf, mass=False)]
    ece = expected_calibration_error(conf, correct, BINS)
    gaps_mass = [(b.size, abs(correct[b].mean() - conf[b].mean())) for b in _bins(conf, mass=True)]
    n = len(labels)
    onehot = np.eye(probs.shape[1])[labels]
    return {"ece": ece, "ece_equal_mass": sum(s * g for s, g in gaps_mass) / n,
            "mce": max((g for _, g in gaps), default=0.0), "brier": float(((probs - onehot) ** 2).sum(1).mean()),
            "nll": float(-np.log(np.clip(probs[np.arange(n), labels], 1e-12, None)).mean()),
            "accuracy": float(correct.mean()), "mean_confidence": float(conf.mean())}


def reliability(probs: np.ndarray, labels: np.ndarray) -> list[dict]:
    conf, correct = probs.max(1), (probs.argmax(1) == labels)
    return [{"low": b / BINS, "high": (b + 1) / BINS, "count": int(m.sum()),
             "confidence": float(conf[m].mean()) if m.any() else None,
             "accuracy": float(correct[m].mean()) if m.any() else None}
            for b in range(BINS) for m in [equal_width_bins(conf, BINS) == b]]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T in [0.05, 20] minimising the NLL of softmax(logits / T) (bounded 1-D search on log T:
    it cannot diverge, also for near-uniform logits where gradient steps on T can)."""
    from scipy.optimize import minimize_scalar
    z, y = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / float(np.exp(log_t)), y))
    res = minimize_scalar(nll, bounds=(float(np.log(0.05)), float(np.log(20.0))), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def fit_vector_scaling(logits: torch.Tensor, labels: torch.Tensor):
    """Per-class scale w and bias b minimising the NLL of softmax(logits * w + b) (L-BFGS)."""
    k = logits.shape[1]
    w, b = torch.ones(k, requires_grad=True), torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=100)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits * w + b, labels) + 1e-3 * ((w - 1) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach(), b.detach()


def recalibrate(fit_logits: torch.Tensor, fit_labels: torch.Tensor, eval_logits: torch.Tensor) -> dict:
    """Probabilities of ``eval_logits`` after each recalibration map fitted on (fit_logits, fit_labels)."""
    from sklearn.isotonic import IsotonicRegression
    t = fit_temperature(fit_logits, fit_labels)
    w, b = fit_vector_scaling(fit_logits, fit_labels)
    p_fit, p_eval = F.softmax(fit_logits, 1).numpy(), F.softmax(eval_logits, 1).numpy()
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        p_fit.max(1), (p_fit.argmax(1) == fit_labels.numpy()).astype(float))
    top = np.clip(iso.predict(p_eval.max(1)), 1e-6, 1 - 1e-6)
    iso_probs = p_eval.copy()  # the top label gets the isotonic confidence; the rest share the remainder
    rest = 1 - p_eval.max(1)
    scale = np.where(rest > 0, (1 - top) / np.where(rest > 0, rest, 1), 0)
    iso_probs *= scale[:, None]
    iso_probs[np.arange(len(top)), p_eval.argmax(1)] = top
    return {"none": p_eval, "temperature": F.softmax(eval_logits / t, 1).numpy(),
            "vector_scaling": F.softmax(eval_logits * w + b, 1).numpy(), "isotonic": iso_probs, "_temperature": t}
