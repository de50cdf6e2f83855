"""The ART adapter: our models as ART ``PyTorchClassifier`` objects, ART's reference attacks under our settings,
and robust accuracy of ours and ART's on the same points (true labels; ART's ``y=None`` would attack the model's
own predictions). Robust accuracy is computed the same way for both: the share of all points still correct."""
from __future__ import annotations

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import Ball, frozen_eval, model_device
from attacks.pgd import default_step_size
from audit.methods.seeding import seeded


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


def compare_with_art(model, x: torch.Tensor, y: torch.Tensor, ball: Ball, *, params: dict, num_classes: int,
                     seed: int, batch_size: int = 512) -> dict:
    """Robust accuracy of ours and ART's per attack on the same points, settings and true labels.

    ``ball``: the threat ball (eps, norm, clip); ``params``: attack name -> our keyword settings (steps,
    queries, ...); returns {attack: {ours, art, shortfall}} with shortfall = ours - art (positive: ART found more
    adversarial examples)."""
    was = model.training
    device = model_device(model)
    clf = art_classifier(model, x.shape[1:], num_classes, ball.clip)
    clip = ball.clip
    ours_ball = Ball(ball.eps, ball.norm, (clip[0].to(device), clip[1].to(device))
                     if isinstance(clip[0], torch.Tensor) else clip)
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
            ours_acc = float((still_correct(model, ours, y) & clean_ok).mean())
            art_acc = float((still_correct(model, adv, y) & clean_ok).mean())
            out[name] = {"ours": ours_acc, "art": art_acc, "shortfall": ours_acc - art_acc}
    finally:
        model.train(was)
    return out
