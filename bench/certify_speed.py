"""Certified bounds on digits28: the share of test points IBP and CROWN prove robust, beside PGD's empirical
robust accuracy, and what each costs (issue 31 groundwork: attacks/certify.py).

Trains (here, seeded, a few epochs) a small MLP and the Madry CNN on the built-in digits28 with PGD adversarial
training at a small Linf eps, then certifies N test points with IBP and CROWN, prints the certified and empirical
shares, the seconds of each after a warm-up, and which layers CROWN left to IBP (too wide for its per-point
budget). Soundness is checked on the way: no point PGD breaks may be certified.

Usage: python bench/certify_speed.py [--points 500] [--eps 0.02] [--epochs 3] [--threads 2] [--per-point-floats N]
       [--models mlp,madry-cnn]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from attacks import ATTACKS
from attacks.adversaries import Adversary
from attacks.certify import certify
from attacks.recipes import Recipe
from attacks.training import train
from audit.data.sources import BUILTIN
from audit.models.reference import MLP, MadryCNN


def trained(model: nn.Module, data, eps: float, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    train(model, data.x_train, data.y_train, recipe=Recipe(epochs=epochs, batch_size=128, lr=1e-3),
          adversary=Adversary(method="pgd", eps=eps, steps=5))
    return model.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=500)
    p.add_argument("--eps", type=float, default=0.02)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--per-point-floats", type=int, default=0,
                   help="CROWN's per-point budget for a layer's bounds (default: attacks.crown.PER_POINT_FLOATS)")
    p.add_argument("--models", default="mlp,madry-cnn")
    a = p.parse_args()
    if a.per_point_floats:
        import attacks.certify
        attacks.certify.PER_POINT_FLOATS = a.per_point_floats
    torch.set_num_threads(a.threads)
    data = BUILTIN["digits28"](seed=0)
    x, y = data.x_test[: a.points], data.y_test[: a.points]
    models = {"mlp": nn.Sequential(nn.Flatten(), MLP(784, 10, hidden=128)), "madry-cnn": MadryCNN()}
    for name, model in models.items():
        if name not in a.models.split(","):
            continue
        trained(model, data, a.eps, a.epochs)
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        adv = ATTACKS["pgd"](model, x, y, eps=a.eps, steps=20).x_adv
        with torch.no_grad():
            robust = model(adv).argmax(1) == y
        certify(model, x[:8], y[:8], eps=a.eps)  # warm-up
        for method in ("ibp", "crown"):
            t = time.perf_counter()
            cert = certify(model, x, y, eps=a.eps, method=method)
            seconds = time.perf_counter() - t
            unsound = int((cert.certified & ~robust).sum())
            print(f"{name:10s} {method:5s} eps {a.eps:g}: certified {cert.certified.float().mean():6.1%}  "
                  f"PGD-20 robust {robust.float().mean():6.1%}  clean {clean.float().mean():6.1%}  "
                  f"{seconds:7.1f} s for {len(x)} points  certified-but-broken {unsound}  "
                  f"IBP layers {', '.join(cert.ibp_layers) or 'none'}")


if __name__ == "__main__":
    main()
