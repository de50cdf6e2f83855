"""Native Square vs ART's SquareAttack (issue 17): the same model, points, eps, p_init and query budget, in one run
after a warm-up; wall time, the ratio, and the success rate (share of the clean-correct points fooled) of each.
Then FAB-T and APGD-T against their nearest references: FAB-T's robust accuracy against APGD-CE's at the same
budget, and FAB's minimal L2 perturbations against ART's DeepFool on the same points.

    .venv/bin/python bench/square_vs_art.py            # CPU
    python3 bench/square_vs_art.py --out DIR           # GPU, when one is available
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from attacks.apgd import apgd_ce, apgd_t  # noqa: E402
from attacks.fab import fab_t  # noqa: E402
from attacks.square import square  # noqa: E402
from attacks.training import Recipe, train  # noqa: E402
from audit.data.sources.builtin import load_digits, load_digits28  # noqa: E402
from audit.methods.art_adapter import art_classifier, one_hot  # noqa: E402
from audit.methods.evaluation import attack_mode  # noqa: E402
from audit.models import MadryCNN, SmallCNN  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def fooled(model, x_adv, y, ok) -> float:
    with torch.no_grad():
        wrong = model(torch.as_tensor(x_adv, device=y.device)).argmax(1) != y
    return float((wrong & ok).sum() / ok.sum())


def square_row(name, model, x, y, eps, queries, device):
    from art.attacks.evasion import SquareAttack
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    clf = art_classifier(model, x.shape[1:], 10, (0.0, 1.0))

    def ours():
        with attack_mode(model, device, "fp32", channels_last=True):
            return square(model, x.contiguous(memory_format=torch.channels_last), y, eps=eps, queries=queries,
                          p_init=0.8, generator=torch.Generator(device=device).manual_seed(0))
    ours_warm = ours()  # warm-up (cuDNN autotuning, allocator)
    sync(device)
    t = time.perf_counter()
    out = ours()
    sync(device)
    t_ours = time.perf_counter() - t
    np.random.seed(0)
    art = SquareAttack(clf, norm=np.inf, eps=eps, max_iter=queries, p_init=0.8, nb_restarts=1, batch_size=512,
                       verbose=False)
    art.generate(x=x[:8].cpu().numpy(), y=one_hot(y[:8], 10))  # warm-up
    t = time.perf_counter()
    adv = art.generate(x=x.cpu().numpy(), y=one_hot(y, 10))
    t_art = time.perf_counter() - t
    del ours_warm
    return {"model": name, "points": len(y), "eps": eps, "queries": queries, "ours_s": round(t_ours, 3),
            "art_s": round(t_art, 3), "speedup": round(t_art / t_ours, 1),
            "ours_success": fooled(model, out.x_adv, y, ok), "art_success": fooled(model, adv, y, ok),
            "ours_forwards": out.forward_passes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=400)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    rows = []
    d8 = load_digits()
    small = SmallCNN()
    train(small, d8.x_train, d8.y_train, Recipe(epochs=8, lr=2e-3, seed=0))
    small = small.eval().to(device)
    x8, y8 = d8.x_test[:args.points].to(device), d8.y_test[:args.points].to(device)
    rows.append(square_row("SmallCNN 8x8", small, x8, y8, 0.1, args.queries, device))
    d28 = load_digits28()
    madry = MadryCNN(width=16, hidden=256)
    train(madry, d28.x_train, d28.y_train, Recipe(epochs=6, lr=1e-3, seed=0))
    madry = madry.eval().to(device)
    x28, y28 = d28.x_test[:args.points].to(device), d28.y_test[:args.points].to(device)
    rows.append(square_row("MadryCNN-narrow 28x28", madry, x28, y28, 0.1, args.queries, device))
    for r in rows:
        print(json.dumps(r))
    # FAB-T and APGD-T against references
    refs = {}
    x, y = x8[:200], y8[:200]
    with torch.no_grad():
        acc = lambda a: float((small(a).argmax(1) == y).float().mean())  # noqa: E731
    for eps in (0.05, 0.1):
        refs[f"linf {eps}"] = {
            "apgd_ce": acc(apgd_ce(small, x, y, eps=eps, steps=100, generator=torch.Generator(device=device)
                                .manual_seed(0)).x_adv),
            "apgd_t": acc(apgd_t(small, x, y, eps=eps, steps=100, n_targets=9, generator=torch.Generator(
                device=device).manual_seed(0)).x_adv),
            "fab_t": acc(fab_t(small, x, y, eps=eps, steps=100, n_targets=9).x_adv)}
    from art.attacks.evasion import DeepFool
    df = DeepFool(art_classifier(small, x.shape[1:], 10, (0.0, 1.0)), max_iter=100, epsilon=1e-6, nb_grads=10,
                  batch_size=512, verbose=False).generate(x=x.cpu().numpy())
    df_norm = np.linalg.norm((df - x.cpu().numpy()).reshape(len(y), -1), axis=1)
    fab_out = fab_t(small, x, y, eps=10.0, norm="l2", steps=100, n_targets=9)
    fab_norm = (fab_out.x_adv - x).flatten(1).norm(dim=1).cpu().numpy()
    with torch.no_grad():
        both = ((small(torch.from_numpy(df).to(device)).argmax(1) != y) & (small(fab_out.x_adv).argmax(1) != y)
                & (small(x).argmax(1) == y)).cpu().numpy()
    refs["minimal L2 (points both broke)"] = {"fab_t_median": float(np.median(fab_norm[both])),
                                               "deepfool_median": float(np.median(df_norm[both])),
                                               "points": int(both.sum())}
    print(json.dumps(refs, indent=1))
    print(f"\ndevice {device}")
    for r in rows:
        print(f"{r['model']:24s} {r['points']} points, eps {r['eps']}, {r['queries']} queries: "
              f"ours {r['ours_s']:.2f} s, "
              f"ART {r['art_s']:.2f} s ({r['speedup']}x); success ours {r['ours_success']:.1%} vs ART "
              f"{r['art_success']:.1%}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "square_vs_art.json").write_text(json.dumps({"square": rows, "references": refs}, indent=1))


if __name__ == "__main__":
    main()
