"""Cross-check of the native attack engine against ART, the reference implementation, on a subsample.

ART's ``FastGradientMethod`` and ``ProjectedGradientDescent`` run on the same model, points, labels (true labels;
ART's y=None would attack the model's own predictions), eps, steps and step size. Robust accuracy is computed the
same way for both (share of all points correct). ``max_shortfall_vs_art`` is how much weaker ours is than ART's
at worst (positive: ART found more adversarial examples); the policy bounds it.
"""
from __future__ import annotations

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import frozen_eval
from attacks.pgd import default_step_size
from audit.checks.base import controls
from audit.context import Context
from audit.result import Measurement


def _art_clip(clip):
    """ART's clip_values: two floats, or two arrays shaped like one input for per-feature bounds."""
    if isinstance(clip[0], torch.Tensor):
        return (clip[0].cpu().numpy().astype(np.float32), clip[1].cpu().numpy().astype(np.float32))
    return tuple(float(c) for c in clip)


def art_classifier(model: torch.nn.Module, input_shape, num_classes: int, clip):
    from art.estimators.classification import PyTorchClassifier
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(input_shape),
                             nb_classes=num_classes, clip_values=_art_clip(clip),
                             device_type="gpu" if next(model.parameters()).is_cuda else "cpu")


def art_attack(name: str, classifier, *, eps: float, norm: str, steps: int, batch_size: int):
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    art_norm = np.inf if norm == "linf" else 2
    if name == "fgsm":
        return FastGradientMethod(classifier, norm=art_norm, eps=eps, batch_size=batch_size)
    return ProjectedGradientDescent(classifier, norm=art_norm, eps=eps, eps_step=default_step_size(eps, steps),
                                    max_iter=steps, num_random_init=1, batch_size=batch_size, verbose=False)


def compare_with_art(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str, steps: int, clip,
                     num_classes: int, seed: int, attacks=("fgsm", "pgd"), batch_size: int = 512) -> dict:
    """Robust accuracy of ours and ART's per attack on the same points; returns {attack: {ours, art, shortfall}}."""
    was = model.training
    device = next(model.parameters()).device
    clf = art_classifier(model, x.shape[1:], num_classes, clip)
    ours_clip = (clip[0].to(device), clip[1].to(device)) if isinstance(clip[0], torch.Tensor) else clip
    out = {}
    try:
        for name in attacks:
            gen = torch.Generator().manual_seed(seed)
            ours = ATTACKS[name](model, x.to(device), y.to(device), eps=eps, norm=norm, clip=ours_clip, steps=steps,
                                 generator=gen).x_adv
            np.random.seed(seed)
            adv = art_attack(name, clf, eps=eps, norm=norm, steps=steps, batch_size=batch_size).generate(
                x=x.numpy(), y=np.eye(num_classes, dtype=np.float32)[y.numpy()])
            with frozen_eval(model), torch.no_grad():
                clean_ok = model(x.to(device)).argmax(1).cpu() == y
                ours_acc = float(((model(ours).argmax(1).cpu() == y) & clean_ok).float().mean())
                art_acc = float(((model(torch.from_numpy(adv).to(device)).argmax(1).cpu() == y)
                                 & clean_ok).float().mean())
            out[name] = {"ours": ours_acc, "art": art_acc, "shortfall": ours_acc - art_acc}
    finally:
        model.train(was)
    return out


class ArtAgreement:
    id = "art_agreement"
    title = "Agreement with ART's reference attacks"
    scope = "variant"
    controls = controls(MEASURE_2_13="direct", MEASURE_2_1="supporting")
    description = ("Our FGSM and PGD against ART's FastGradientMethod and ProjectedGradientDescent on a subsample "
                   "at the middle eps of the grid, same settings and true labels.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        a = ctx.config.attacks
        n = min(a.art_crosscheck_points, ctx.data.x_test.shape[0])
        idx = torch.from_numpy(np.random.default_rng(ctx.config.seed).choice(ctx.data.x_test.shape[0], n,
                                                                               replace=False))
        eps = a.eps[len(a.eps) // 2]
        res = compare_with_art(ctx.variants[variant].model, ctx.data.x_test[idx], ctx.data.y_test[idx], eps=eps,
                               norm=a.norm.value, steps=a.pgd_steps, clip=ctx.data.attack_clip,
                               num_classes=ctx.data.num_classes, seed=ctx.config.seed,
                               attacks=tuple(x for x in a.attacks if x in ("fgsm", "pgd")))
        shortfall = max(r["shortfall"] for r in res.values())
        text = "; ".join(f"{k.upper()} ours {r['ours']:.1%} vs ART {r['art']:.1%}" for k, r in res.items())
        return Measurement(check=self.id, variant=variant,
                           metrics={"max_shortfall_vs_art": shortfall},
                           details={"points": n, "eps": eps, "norm": a.norm.value, "steps": a.pgd_steps,
                                    "attacks": res, "art_version": _art_version()},
                           summary=f"{text} on {n} points at eps {eps:g}")


def _art_version() -> str:
    import art
    return art.__version__
