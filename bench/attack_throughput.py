"""Attack throughput: our PGD against ART's ProjectedGradientDescent and the k x (forward+backward) bound, on the
same model, data, batch and settings, measured side by side in one run; and the passes the early-stop evaluation
saves on an undefended model at equal robust accuracy.

Usage: python bench/attack_throughput.py [--device cpu|cuda] [--model small|resnet|both] [--n 512] [--batch 256]
                                         [--steps 10] [--bf16] [--channels-last]
Models: "small" = the demo's SmallCNN on 1x8x8 digits; "resnet" = PreAct ResNet-18 at 3x32x32 (random weights and
inputs: throughput does not depend on training). Issue 4 targets: GPU PGD-10 >= 0.9x the bound and >= 2.5x ART;
CPU no slower than ART; early stop >= 5x fewer passes than fixed-step PGD for the same robust accuracy.
"""
from __future__ import annotations

import argparse
import logging
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from attacks.pgd import default_step_size, pgd
from attacks.training import Recipe, train
from audit.data.sources.builtin import load_digits
from audit.models.reference import PreActResNet18, SmallCNN

EPS = 8 / 255


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int = 1) -> float:
    """Best of ``repeats`` wall times of fn() (the first call warms up when repeats > 1)."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def batches(x, y, bs):
    for i in range(0, x.shape[0], bs):
        yield x[i:i + bs], y[i:i + bs]


def one_fb(model, x, y, bf16):
    """One forward+backward w.r.t. the input (what a PGD step costs at least)."""
    xr = x.detach().requires_grad_(True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(xr), y, reduction="sum")
    torch.autograd.grad(loss, xr)


def ours(model, x, y, steps, bs, bf16, early_stop=False):
    passes, out = 0, []
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        for xb, yb in batches(x, y, bs):
            r = pgd(model, xb, yb, eps=EPS, steps=steps, early_stop=early_stop,
                    generator=torch.Generator().manual_seed(0))
            passes += r.example_passes
            out.append(r.x_adv)
    return torch.cat(out), passes


def art_pgd(model, x, y, steps, bs, device):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier
    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=10, clip_values=(0.0, 1.0),
                            device_type="gpu" if device.type == "cuda" else "cpu")
    atk = ProjectedGradientDescent(clf, norm=np.inf, eps=EPS, eps_step=default_step_size(EPS, steps), max_iter=steps,
                                   num_random_init=1, batch_size=bs, verbose=False)
    xn, yn = x.cpu().numpy(), np.eye(10, dtype=np.float32)[y.cpu().numpy()]
    return lambda: atk.generate(x=xn, y=yn)


def accuracy(model, x, y, bs=512):
    with torch.no_grad():
        return float(torch.cat([(model(xb).argmax(1) == yb) for xb, yb in batches(x, y, bs)]).float().mean())


def throughput(name, model, x, y, args, device):
    model.eval()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    n, k, bs = x.shape[0], args.steps, args.batch
    one_fb(model, x[:bs], y[:bs], args.bf16)  # warm-up
    t_fb = timed(lambda: [one_fb(model, xb, yb, args.bf16) for xb, yb in batches(x, y, bs)], device, 2)
    bound = n / (k * t_fb)
    t_ours = timed(lambda: ours(model, x, y, k, bs, args.bf16), device, 2)
    t_art = timed(art_pgd(model, x, y, k, bs, device), device, 1)
    r_ours, r_art = n / t_ours, n / t_art
    print(f"\n{name}: {n} images {tuple(x.shape[1:])}, batch {bs}, PGD-{k}, Linf eps 8/255, device {device}"
          f"{', bf16' if args.bf16 else ''}{', channels-last' if args.channels_last else ''}")
    print(f"  bound ({k} x fwd+bwd)      {bound:10,.1f} img/s")
    print(f"  ours PGD-{k}               {r_ours:10,.1f} img/s   {r_ours / bound:.2f}x the bound")
    print(f"  ART ProjectedGradientDescent {r_art:8,.1f} img/s   ours / ART = {r_ours / r_art:.2f}x")
    return {"model": name, "bound": bound, "ours": r_ours, "art": r_art}


def early_stop_savings(device, steps_list=(10, 20, 50)):
    """Passes of fixed-step vs early-stop PGD on the naturally trained SmallCNN (digits test split)."""
    d = load_digits(seed=0)
    torch.manual_seed(0)
    model = SmallCNN().to(device)
    train(model, d.x_train.to(device), d.y_train.to(device), Recipe(epochs=8, lr=2e-3, seed=0))
    model.eval()
    x, y = d.x_test.to(device), d.y_test.to(device)
    print(f"\nearly stop vs fixed steps: naturally trained SmallCNN, {x.shape[0]} digits test images, Linf")
    print("  eps    steps  robust acc fixed / early   passes fixed / early   ratio")
    for eps in (0.1, 0.2, 0.3):
        for steps in steps_list:
            outs = [pgd(model, x, y, eps=eps, steps=steps, early_stop=e, generator=torch.Generator().manual_seed(0))
                    for e in (False, True)]
            accs = [accuracy(model, o.x_adv, y) for o in outs]
            print(f"  {eps:<6g} {steps:<6d} {accs[0]:6.1%} / {accs[1]:6.1%}          {outs[0].example_passes:8,d} / "
                  f"{outs[1].example_passes:7,d}   {outs[0].example_passes / outs[1].example_passes:5.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", choices=("small", "resnet", "both"), default="both")
    p.add_argument("--n", type=int, default=512, help="images per measurement")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    device = torch.device(args.device)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    g = torch.Generator().manual_seed(0)
    if args.model in ("small", "both"):
        model = SmallCNN().to(device)
        x = torch.rand((args.n, 1, 8, 8), generator=g).to(device)
        throughput("SmallCNN", model, x, torch.randint(0, 10, (args.n,), generator=g).to(device), args, device)
    if args.model in ("resnet", "both"):
        torch.manual_seed(0)
        model = PreActResNet18().to(device)
        x = torch.rand((args.n, 3, 32, 32), generator=g).to(device)
        throughput("PreActResNet18", model, x, torch.randint(0, 10, (args.n,), generator=g).to(device), args, device)
    early_stop_savings(device)


if __name__ == "__main__":
    main()
