"""The ART adapter: our models as ART ``PyTorchClassifier`` objects, ART's reference attacks under our settings,
and robust accuracy of ours and ART's on the same points (true labels; ART's ``y=None`` would attack the model's
own predictions). Robust accuracy is computed the same way for both: the share of all points still correct, and
per point, so that the two can be compared pair by pair (an exact one-sided paired test on the discordant points)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import Ball, frozen_eval, model_device
from attacks.pgd import default_step_size
from audit.methods.seeding import seeded
from audit.methods.worst_case import verified_breaks


def art_clip(clip):
    """ART's clip_values: two floats, or two arrays shaped like one input for per-feature bounds."""
    if isinstance(clip[0], torch.Tensor):
        return (clip[0].cpu().numpy().astype(np.float32), clip[1].cpu().numpy().astype(np.float32))
    return tuple(float(c) for c in clip)


def art_classifier(model: torch.nn.Module, input_shape, num_classes: int, clip):
    from art.estimators.classification import PyTorchClassifier
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(input_shape),
                             nb_classes=num_classes, clip_values=art_clip(clip),
                             device_type="gpu" if model_device(model).type == "cuda" else "cpu")


ART_NAMES = {"fgsm": "FastGradientMethod", "pgd": "ProjectedGradientDescent",
             "apgd_ce": "AutoProjectedGradientDescent", "square": "SquareAttack"}


def art_attack(name: str, classifier, *, eps: float, norm: str, params: dict, batch_size: int):
    """ART's nearest equivalent of our attack ``name`` with the same settings (``params``: ours)."""
    from art.attacks.evasion import (
        AutoProjectedGradientDescent,
        FastGradientMethod,
        ProjectedGradientDescent,
        SquareAttack,
    )
    art_norm = np.inf if norm == "linf" else 2
    if name == "fgsm":
        return FastGradientMethod(classifier, norm=art_norm, eps=eps, batch_size=batch_size)
    if name == "pgd":
        steps = params["steps"]
        return ProjectedGradientDescent(classifier, norm=art_norm, eps=eps, eps_step=default_step_size(eps, steps),
                                        max_iter=steps, num_random_init=1, batch_size=batch_size, verbose=False)
    if name == "apgd_ce":
        return AutoProjectedGradientDescent(classifier, norm=art_norm, eps=eps, eps_step=2 * eps,
                                            max_iter=params["steps"], targeted=False, nb_random_init=1,
                                            batch_size=batch_size, loss_type="cross_entropy", verbose=False)
    if name == "square":
        return SquareAttack(classifier, norm=art_norm, eps=eps, max_iter=params["queries"], p_init=params["p_init"],
                            nb_restarts=1, batch_size=batch_size, verbose=False)
    raise ValueError(f"no ART equivalent of {name!r}")


def one_hot(y: torch.Tensor, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[y.cpu().numpy()]


def still_correct(model, x_adv, y: torch.Tensor) -> np.ndarray:
    """Per-point correctness of ``model`` on adversarial inputs (a tensor or ART's numpy array)."""
    device = model_device(model)
    x_adv = torch.from_numpy(x_adv) if isinstance(x_adv, np.ndarray) else x_adv
    with frozen_eval(model), torch.no_grad():
        return (model(x_adv.to(device)).argmax(1).cpu() == y.cpu()).numpy()


def shortfall_p_value(only_art: int, only_ours: int) -> float:
    """Exact one-sided paired test of H0 "ours is at least as strong as ART's" on the discordant points: the
    binomial probability of at least ``only_art`` of the ``only_art + only_ours`` discordant points going ART's way
    at p = 1/2 (the one-sided exact McNemar test; 1.0 with no discordant point)."""
    n = int(only_art) + int(only_ours)
    if n == 0 or only_art == 0:
        return 1.0
    from scipy.stats import binomtest
    return float(binomtest(int(only_art), n, 0.5, alternative="greater").pvalue)


def fewest_significant(alpha: float) -> int:
    """The fewest discordant points that can be significant at ``alpha``: the smallest k with 0.5**k < alpha
    (every discordant point ART's way)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k = 1
    while 0.5 ** k >= alpha:
        k += 1
    return k


def points_to_detect(shortfall: float, alpha: float) -> int:
    """The fewest points on which a shortfall of ``shortfall`` (a share) is significant at ``alpha`` when every
    discordant point goes ART's way: ``fewest_significant(alpha) / shortfall``, rounded up (5 / 0.03 -> 167)."""
    return math.ceil(fewest_significant(alpha) / shortfall - 1e-9)


@dataclass(frozen=True)
class Paired:
    """One attack, ours and ART's, on the same points. Per point: ``clean_ok`` (the model is right on it clean),
    ``ours_broken`` and ``art_broken`` (a verified adversarial example: inside the ball and the valid range and
    misclassified, ``verified_breaks``; a clean error is no attack's break). ``art_outside``: ART's misclassified
    examples that left the ball or the range (not counted as breaks)."""

    clean_ok: np.ndarray
    ours_broken: np.ndarray
    art_broken: np.ndarray
    art_outside: int = 0

    @property
    def points(self) -> int:
        return int(self.clean_ok.size)

    @property
    def ours(self) -> float:
        """Our robust accuracy: the share of all points still correct under our attack."""
        return float((self.clean_ok & ~self.ours_broken).mean()) if self.points else 0.0

    @property
    def art(self) -> float:
        return float((self.clean_ok & ~self.art_broken).mean()) if self.points else 0.0

    @property
    def shortfall(self) -> float:
        """ours - art (positive: ART found more adversarial examples); (only_art - only_ours) / points."""
        return self.ours - self.art

    @property
    def only_art_mask(self) -> np.ndarray:
        return self.art_broken & ~self.ours_broken

    @property
    def only_art(self) -> int:
        return int(self.only_art_mask.sum())

    @property
    def only_ours(self) -> int:
        return int((self.ours_broken & ~self.art_broken).sum())

    @property
    def p_value(self) -> float:
        return shortfall_p_value(self.only_art, self.only_ours)


def compare_with_art(model, x: torch.Tensor, y: torch.Tensor, ball: Ball, *, params: dict, num_classes: int,
                     seed: int, batch_size: int = 512) -> dict[str, Paired]:
    """Ours and ART's per attack on the same points, settings and true labels, per point (:class:`Paired`).

    ``ball``: the threat ball (eps, norm, clip); ``params``: attack name -> our keyword settings (steps,
    queries, ...). Both sides' examples are checked by ``verified_breaks`` before they count."""
    was = model.training
    device = model_device(model)
    clf = art_classifier(model, x.shape[1:], num_classes, ball.clip)
    clip = ball.clip
    ours_ball = Ball(ball.eps, ball.norm, (clip[0].to(device), clip[1].to(device))
                     if isinstance(clip[0], torch.Tensor) else clip)
    cpu_ball = Ball(ball.eps, ball.norm, (clip[0].cpu(), clip[1].cpu()) if isinstance(clip[0], torch.Tensor) else clip)
    out = {}
    try:
        clean_ok = still_correct(model, x, y)
        for name, p in params.items():
            gen = torch.Generator(device=device).manual_seed(seed)
            spec = ATTACKS[name]
            ours = spec.function(model, x.to(device), y.to(device), ours_ball, spec.make(**p), generator=gen).x_adv
            with seeded(seed):  # ART draws its random starts from numpy's global generator
                adv = art_attack(name, clf, eps=ball.eps, norm=ball.norm.value, params=p,
                                 batch_size=batch_size).generate(x=x.numpy(), y=one_hot(y, num_classes))
            adv_t = torch.from_numpy(np.asarray(adv, dtype=np.float32))
            art_broken = verified_breaks(model, x, adv_t, y, cpu_ball, batch_size) & clean_ok
            outside = int((~still_correct(model, adv_t, y) & clean_ok & ~art_broken).sum())
            out[name] = Paired(clean_ok=clean_ok,
                               ours_broken=verified_breaks(model, x, ours.cpu(), y, cpu_ball, batch_size) & clean_ok,
                               art_broken=art_broken, art_outside=outside)
    finally:
        model.train(was)
    return out
