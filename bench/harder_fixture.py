"""Adversarial-training recipes on a harder fixture than the demo (issue 16): scikit-learn's digits upsampled to
28x28 (`data.source = "digits28"`), the Madry et al. MNIST CNN, Linf eps 0.3 (MNIST's threat model), advaudit's
default recipe (linear eps warm-up over 40% of the epochs, Adam, the epoch with the best held-out PGD accuracy),
several seeds. Reports clean accuracy and PGD-40 (and PGD-100 x 5 restarts on the first seed) robust accuracy on
the test split, against natural training of the same network.

    .venv/bin/python bench/harder_fixture.py                     # CPU: a narrower CNN, 3 seeds
    python3 bench/harder_fixture.py --full --epochs 60 --out DIR  # GPU: the full Madry CNN
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from attacks.pgd import pgd  # noqa: E402
from attacks.recipes import Recipe, auto_warmup  # noqa: E402
from attacks.training import Adversary, train  # noqa: E402
from audit.data.sources.builtin import load_digits28  # noqa: E402
from audit.models import MadryCNN  # noqa: E402

EPS = 0.3


@torch.no_grad()
def accuracy(model, x, y, batch=1024):
    return float(sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum() for i in range(0, len(y), batch))
                 / len(y))


def robust(model, x, y, steps: int, restarts: int, device) -> float:
    gen = torch.Generator(device=device).manual_seed(123)
    ok = torch.zeros(len(y), dtype=torch.bool, device=device)
    for i in range(0, len(y), 512):
        out = pgd(model, x[i:i + 512], y[i:i + 512], eps=EPS, steps=steps, restarts=restarts, generator=gen)
        with torch.no_grad():
            ok[i:i + 512] = model(out.x_adv).argmax(1) == y[i:i + 512]
    return float(ok.float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="the full Madry CNN (32/64 channels, 1024 units)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="none,pgd,fgsm_rs,trades")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = load_digits28()
    x_tr, y_tr, x_te, y_te = (t.to(device) for t in (d.x_train, d.y_train, d.x_test, d.y_test))
    width, hidden = (32, 1024) if args.full else (16, 256)
    rows = []
    for method in args.methods.split(","):
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = MadryCNN(width=width, hidden=hidden).to(device)
            adversarial = method != "none"
            recipe = Recipe(epochs=args.epochs, batch_size=64, lr=2e-3, warmup_epochs=auto_warmup(args.epochs)
                            if adversarial else 0, select="best" if adversarial else "last",
                            holdout=128 if adversarial else 0,
                            precision="bf16" if device.type == "cuda" else "fp32", seed=seed)
            start = time.perf_counter()
            stats = train(model, x_tr, y_tr, recipe, Adversary(method, EPS, steps=7) if adversarial else None)
            seconds = time.perf_counter() - start
            model.eval()
            row = {"method": method, "seed": seed, "clean": accuracy(model, x_te, y_te),
                   "pgd40": robust(model, x_te, y_te, 40, 1, device), "seconds": round(seconds, 1),
                   "selected_epoch": stats.selected_epoch, "epochs": stats.epochs}
            if seed == 0 and adversarial:
                row["pgd100x5"] = robust(model, x_te, y_te, 100, 5, device)
            row["collapsed"] = row["clean"] < 0.2
            rows.append(row)
            print(json.dumps(row), flush=True)
    natural = [r["clean"] for r in rows if r["method"] == "none"]
    print(f"\ndevice {device}, {'full' if args.full else 'narrow'} Madry CNN, {args.epochs} epochs, eps {EPS}")
    for method in args.methods.split(","):
        mine = [r for r in rows if r["method"] == method]
        print(f"{method:8s} clean {min(r['clean'] for r in mine):.1%}-{max(r['clean'] for r in mine):.1%}  "
              f"PGD-40 {min(r['pgd40'] for r in mine):.1%}-{max(r['pgd40'] for r in mine):.1%}  "
              f"collapsed {sum(r['collapsed'] for r in mine)}/{len(mine)}  "
              f"{sum(r['seconds'] for r in mine) / len(mine):.0f} s per run"
              + (f"  clean gap to natural {max(natural) - min(r['clean'] for r in mine):+.1%}" if natural else ""))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "harder_fixture.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
