"""Speed of attacks and trainers against the hardware bound, a plain hand-written loop and the peers, in one run.

For one model and batch, after a warm-up of every contender on the same shapes:
- attacks: PGD-k, APGD-CE-k (one restart) and Square (q queries) against the eager bound (k forward+backward passes,
  or q forward passes for Square), a plain loop written the way a practitioner would, ART's implementation and
  torchattacks' (only when it is installed in the bench environment; never a dependency);
- trainers: natural, PGD-7, FGSM-RS and TRADES epochs against a plain loop and ART's trainers (AdversarialTrainer
  MadryPGD, FBFPyTorch, TRADESPyTorch) with the same batch, optimiser and budget.
Throughput does not depend on the weights, so inputs are random; attacks target the model's own predictions (every
point starts correct). Square drops a point once it is fooled (as ART's does), so it can beat its fixed-query bound.

Usage: python bench/speed.py [--device cpu|cuda] [--model small|resnet] [--n 1024] [--batch 256] [--steps 10]
                             [--queries 100] [--epochs 1] [--bf16] [--channels-last] [--compile]
                             [--only attacks|trainers] [--no-art]
Targets (issue 18): GPU, PreActResNet-18 3x32x32, batch 512: PGD >= 0.95x the bound and >= 1.1x torchattacks; PGD-7
and FGSM-RS training >= 0.95x the plain loop. CPU: PGD on the demo model >= 1.5x ART (bench/demo_walltime.py).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from attacks.adversaries import Adversary
from attacks.apgd import apgd_ce
from attacks.base import frozen_eval
from attacks.pgd import default_step_size, pgd
from attacks.recipes import Recipe
from attacks.square import square
from attacks.training import train
from audit.models.reference import PreActResNet18, SmallCNN

SHAPES = {"small": (1, 8, 8), "resnet": (3, 32, 32)}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds(fn, device, repeats: int = 2) -> float:
    """Best wall time of ``repeats`` calls, after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def chunks(x, y, bs):
    for i in range(0, x.shape[0], bs):
        yield x[i:i + bs], y[i:i + bs]


def autocast(device, bf16):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


# ----------------------------------------------------------------------------------------------- plain loops
def plain_pgd(model, x, y, eps, steps):
    """PGD as written by hand: uniform start, signed-gradient steps, projection and clip, no bookkeeping."""
    alpha = default_step_size(eps, steps)
    delta = torch.empty_like(x).uniform_(-eps, eps)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
        (g,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1)


def plain_trades_x(model, x, eps, steps):
    alpha = default_step_size(eps, steps)
    with torch.no_grad():
        p_clean = F.softmax(model(x), 1)
    xa = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = F.kl_div(F.log_softmax(model(xa), 1), p_clean, reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    return xa


def plain_epoch(model, opt, x, y, bs, method, eps, bf16):
    """One epoch of a hand-written (adversarial) training loop, shuffled on the device."""
    order = torch.randperm(x.shape[0], device=x.device)
    for i in range(0, x.shape[0], bs):
        idx = order[i:i + bs]
        xb, yb = x[idx], y[idx]
        with autocast(x.device, bf16):
            if method in ("pgd", "fgsm_rs", "trades"):
                model.eval()
                if method == "pgd":
                    xb_adv = plain_pgd(model, xb, yb, eps, 7)
                elif method == "fgsm_rs":
                    d = torch.empty_like(xb).uniform_(-eps, eps).requires_grad_(True)
                    (g,) = torch.autograd.grad(F.cross_entropy(model((xb + d).clamp(0, 1)), yb), d)
                    xb_adv = (xb + (d.detach() + 1.25 * eps * g.sign()).clamp(-eps, eps)).clamp(0, 1)
                else:
                    xb_adv = plain_trades_x(model, xb, eps, 7)
                model.train()
            if method == "trades":
                logits = model(xb)
                loss = F.cross_entropy(logits, yb) + 6.0 * F.kl_div(
                    F.log_softmax(model(xb_adv), 1), F.softmax(logits, 1), reduction="batchmean")
            else:
                loss = F.cross_entropy(model(xb_adv if method != "natural" else xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


# ----------------------------------------------------------------------------------------------- peers
def art_classifier(model, shape, device, optimizer=None):
    from art.estimators.classification import PyTorchClassifier
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), optimizer=optimizer, input_shape=shape,
                             nb_classes=10, clip_values=(0.0, 1.0),
                             device_type="gpu" if device.type == "cuda" else "cpu")


def art_attack(name, clf, eps, steps, queries, bs):
    from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent, SquareAttack
    if name == "PGD":
        return ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=default_step_size(eps, steps),
                                        max_iter=steps, num_random_init=1, batch_size=bs, verbose=False)
    if name == "APGD-CE":
        return AutoProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=steps,
                                            nb_random_init=1, batch_size=bs, loss_type="cross_entropy", verbose=False)
    return SquareAttack(clf, norm=np.inf, eps=eps, max_iter=queries, p_init=0.8, nb_restarts=1, batch_size=bs,
                        verbose=False)


def torchattacks_attack(name, model, eps, steps, queries):
    import torchattacks
    if name == "PGD":
        return torchattacks.PGD(model, eps=eps, alpha=default_step_size(eps, steps), steps=steps, random_start=True)
    if name == "APGD-CE":
        return torchattacks.APGD(model, eps=eps, steps=steps, n_restarts=1, loss="ce")
    return torchattacks.Square(model, eps=eps, n_queries=queries, n_restarts=1, p_init=0.8)


# ----------------------------------------------------------------------------------------------- sections
def bench_attacks(model, x, y, args, device, rows):
    eps, k, q, bs = args.eps, args.steps, args.queries, args.batch
    n = x.shape[0]
    model.eval()

    with torch.no_grad():  # attack the model's own predictions: every point starts correct, none is skipped
        y = torch.cat([model(xb).argmax(1) for xb, _ in chunks(x, y, bs)])

    def fb():  # the bound: gradients w.r.t. the input only (weights frozen, as an attack needs)
        with frozen_eval(model):
            for xb, yb in chunks(x, y, bs):
                xr = xb.detach().requires_grad_(True)
                with autocast(device, args.bf16):
                    loss = F.cross_entropy(model(xr), yb)
                torch.autograd.grad(loss, xr)

    def fwd():
        with torch.no_grad(), autocast(device, args.bf16):
            for xb, _ in chunks(x, y, bs):
                model(xb)

    t_fb, t_f = seconds(fb, device, 3), seconds(fwd, device, 3)
    ours = {"PGD": lambda xb, yb: pgd(model, xb, yb, eps=eps, steps=k,
                                      generator=torch.Generator(device).manual_seed(0)),
            "APGD-CE": lambda xb, yb: apgd_ce(model, xb, yb, eps=eps, steps=k, restarts=1,
                                              generator=torch.Generator(device).manual_seed(0)),
            "Square": lambda xb, yb: square(model, xb, yb, eps=eps, queries=q,
                                            generator=torch.Generator(device).manual_seed(0))}
    have_ta = importlib.util.find_spec("torchattacks") is not None
    for name, fn in ours.items():
        bound = n / (q * t_f) if name == "Square" else n / (k * t_fb)
        cost = f"{q} fwd" if name == "Square" else f"{k} fwd+bwd"

        def run(f=fn):
            with autocast(device, args.bf16):
                for xb, yb in chunks(x, y, bs):
                    f(xb, yb)
        line = {"what": f"{name}", "bound": bound, "ours": n / seconds(run, device)}
        if name == "PGD":
            line["plain"] = n / seconds(lambda: [plain_pgd(model, xb, yb, eps, k) for xb, yb in chunks(x, y, bs)],
                                        device)
        if not args.no_art:
            clf = art_classifier(model, tuple(x.shape[1:]), device)
            atk = art_attack(name, clf, eps, k, q, bs)
            xn, yn = x.cpu().numpy(), np.eye(10, dtype=np.float32)[y.cpu().numpy()]
            line["ART"] = n / seconds(lambda atk=atk, xn=xn, yn=yn: atk.generate(x=xn, y=yn), device, 1)
        if have_ta:
            ta = torchattacks_attack(name, model, eps, k, q)
            line["torchattacks"] = n / seconds(lambda ta=ta: [ta(xb, yb) for xb, yb in chunks(x, y, bs)], device)
        line["cost"] = cost
        rows.append(line)


def bench_trainers(make_model, x, y, args, device, rows):
    eps, bs, epochs = args.eps, args.batch, args.epochs
    n = x.shape[0] * epochs
    for method in ("natural", "pgd", "fgsm_rs", "trades"):
        def ours(method=method):
            model = make_model()
            adversary = None if method == "natural" else Adversary(method, eps, steps=7)
            recipe = Recipe(epochs=epochs, batch_size=bs, lr=1e-3, precision="bf16" if args.bf16 else "fp32",
                            channels_last=args.channels_last, seed=0, overfit_guard=False)
            train(model, x, y, recipe, adversary)

        def plain(method=method):
            model = make_model()
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            xs = x.contiguous(memory_format=torch.channels_last) if args.channels_last else x
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _ in range(epochs):
                plain_epoch(model, opt, xs, y, bs, method, eps, args.bf16)

        line = {"what": f"train {method}", "plain": n / seconds(plain, device), "ours": n / seconds(ours, device)}
        if not args.no_art and method != "natural":
            line["ART"] = n / seconds(art_trainer(make_model, method, x, y, args, device), device, 1)
        line["cost"] = f"{epochs} epoch(s)"
        rows.append(line)


def art_trainer(make_model, method, x, y, args, device):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import (
        AdversarialTrainerFBFPyTorch,
        AdversarialTrainerMadryPGD,
        AdversarialTrainerTRADESPyTorch,
    )
    model = make_model()
    clf = art_classifier(model, tuple(x.shape[1:]), device, torch.optim.Adam(model.parameters(), lr=1e-3))
    xn, yn = x.cpu().numpy(), np.eye(10, dtype=np.float32)[y.cpu().numpy()]
    eps, bs, epochs = args.eps, args.batch, args.epochs
    if method == "pgd":
        t = AdversarialTrainerMadryPGD(clf, nb_epochs=epochs, batch_size=bs, eps=eps,
                                       eps_step=default_step_size(eps, 7), max_iter=7, num_random_init=1)
        return lambda: t.fit(xn, yn)
    if method == "fgsm_rs":
        t = AdversarialTrainerFBFPyTorch(clf, eps=eps, use_amp=False)
        return lambda: t.fit(xn, yn, nb_epochs=epochs, batch_size=bs)
    atk = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=default_step_size(eps, 7), max_iter=7,
                                   batch_size=bs, verbose=False)
    t = AdversarialTrainerTRADESPyTorch(clf, atk, beta=6.0)
    return lambda: t.fit(xn, yn, nb_epochs=epochs, batch_size=bs)


def report(rows):
    peers = [c for c in ("plain", "ART", "torchattacks") if any(c in r for r in rows)]
    head = f"{'':<16}{'cost':<14}{'ours img/s':>12}{'bound':>12}{'ours/bound':>11}"
    head += "".join(f"{p + ' img/s':>18}{'ours/' + p:>16}" for p in peers)
    print(head)
    for r in rows:
        line = f"{r['what']:<16}{r['cost']:<14}{r['ours']:>12,.0f}"
        line += f"{r['bound']:>12,.0f}{r['ours'] / r['bound']:>10.2f}x" if "bound" in r else " " * 23
        for p in peers:
            line += f"{r[p]:>18,.0f}{r['ours'] / r[p]:>15.2f}x" if p in r else " " * 34
        print(line, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", choices=tuple(SHAPES), default="small")
    p.add_argument("--n", type=int, default=1024, help="images per measurement")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="attack a torch.compile'd model (measured, not default)")
    p.add_argument("--only", choices=("attacks", "trainers"))
    p.add_argument("--no-art", action="store_true")
    args = p.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    shape = SHAPES[args.model]

    def make_model():
        torch.manual_seed(0)
        m = (SmallCNN() if args.model == "small" else PreActResNet18()).to(device)
        return m.to(memory_format=torch.channels_last) if args.channels_last else m

    g = torch.Generator().manual_seed(0)
    x = torch.rand((args.n, *shape), generator=g).to(device)
    y = torch.randint(0, 10, (args.n,), generator=g).to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, device "
          f"{device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "") +
          f"; {args.model} {shape}, {args.n} images, batch {args.batch}, Linf eps {args.eps:.4g}"
          f"{', bf16' if args.bf16 else ''}{', channels-last' if args.channels_last else ''}"
          f"{', torch.compile' if args.compile else ''}; torchattacks "
          f"{'installed' if importlib.util.find_spec('torchattacks') else 'not installed'}", flush=True)
    rows: list[dict] = []
    if args.only in (None, "attacks"):
        model = make_model()
        if args.compile:
            model = torch.compile(model)
        bench_attacks(model, x, y, args, device, rows)
    if args.only in (None, "trainers"):
        bench_trainers(make_model, x, y, args, device, rows)
    report(rows)


if __name__ == "__main__":
    main()
