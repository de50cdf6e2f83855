"""Data-check benchmark: our leakage detector against cleanlab Datalab's near_duplicate issue type, and our
label-issue detector against Datalab's label issue type, on the same data in one run (recall / precision on
injected leaked copies and label flips, and wall time), and the leakage check at scale.

Usage: python bench/data_checks.py [--flip-rate 0.1] [--big] [--datalab-big] [--n-train 50000] [--n-test 10000]
       [--dim 512]
Issue 6 targets: leaked copies with jitter sigma up to 0.05 found with recall >= 0.95 (Datalab's relative
threshold got 0.65 at 0.05 in REFERENCE section 6); 50,000 train x 10,000 test rows of 512-d embeddings within
30 s on the 2-core machine (blockwise, memory bounded).
"""
from __future__ import annotations

import argparse
import logging
import platform
import resource
import time
import warnings

import numpy as np
import torch

from audit.data.sources.builtin import load_digits
from audit.methods.leakage import calibrated_threshold, find_leaks, jittered_copies

SIGMAS = (0.0, 0.01, 0.03, 0.05, 0.08)


def datalab_near_duplicates(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    """Datalab on train + test stacked (it has no notion of splits): which test rows it calls near duplicates."""
    from cleanlab import Datalab
    x = np.vstack([train, test]).astype(np.float32)
    lab = Datalab(data={"label": np.concatenate([y_train, y_test])}, label_name="label", verbosity=0)
    lab.find_issues(features=x, issue_types={"near_duplicate": {}})
    return lab.get_issues("near_duplicate")["is_near_duplicate_issue"].to_numpy()[len(train):]


def ours(train, y_train, test, y_test):
    thr = calibrated_threshold(train, quantile=0.001, seed=0)
    return find_leaks(train, y_train, test, y_test, threshold=thr).flagged


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def digits_recall(copies: int) -> None:
    d = load_digits(seed=0)
    xtr, ytr = d.x_train.flatten(1), d.y_train.numpy()
    print(f"\nleaked copies on digits: {copies} training rows copied into the test split with Gaussian jitter "
          f"(inputs in [0, 1]); {len(xtr)} train rows, 64 features")
    print("  sigma   ours recall   Datalab recall   ours s   Datalab s")
    for k, sigma in enumerate(SIGMAS):
        inj, src = jittered_copies(xtr, copies, sigma, (0.0, 1.0), seed=k + 1)
        test = torch.cat([d.x_test.flatten(1), inj])
        ytest = np.concatenate([d.y_test.numpy(), ytr[src]])
        flag_o, t_o = timed(lambda test=test, ytest=ytest: ours(xtr, ytr, test, ytest))
        flag_d, t_d = timed(lambda test=test, ytest=ytest:
                            datalab_near_duplicates(xtr.numpy(), ytr, test.numpy(), ytest))
        n0 = len(d.y_test)
        print(f"  {sigma:<7g} {flag_o[n0:].mean():11.1%}   {flag_d[n0:].mean():14.1%}   {t_o:6.2f}   {t_d:9.2f}"
              f"   (untouched test rows flagged: ours {flag_o[:n0].mean():.1%}, Datalab {flag_d[:n0].mean():.1%})")


def _prf(found: np.ndarray, truth: np.ndarray) -> str:
    tp = int((found & truth).sum())
    prec, rec = tp / max(int(found.sum()), 1), tp / max(int(truth.sum()), 1)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return f"precision {prec:.2f} recall {rec:.2f} F1 {f1:.2f}"


def kfold_probs(x: torch.Tensor, y: np.ndarray, folds: int = 5, epochs: int = 15) -> np.ndarray:
    """Out-of-fold softmax probabilities of the demo's SmallCNN (the label_issues check's "kfold" method)."""
    from attacks.training import Recipe, train
    from audit.methods.label_issues import fold_assignment
    from audit.models.reference import SmallCNN
    fold_of = fold_assignment(y, folds, 0)
    probs = np.zeros((len(y), 10))
    for k in range(folds):
        fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        torch.manual_seed(k + 1)
        m = SmallCNN()
        train(m, x[fit], torch.from_numpy(y[fit]), Recipe(epochs=epochs, lr=2e-3, seed=k))
        with torch.no_grad():
            probs[held] = torch.softmax(m.eval()(x[held]), 1).double().numpy()
    return probs


def label_issues(rate: float) -> None:
    """Injected label flips on digits: our detector and Datalab's "label" issue type, same labels, same run."""
    from cleanlab import Datalab
    from cleanlab.filter import find_label_issues

    from audit.checks.label_issues import flip_labels, proxy_probabilities
    d = load_digits(seed=0)
    noisy, truth = flip_labels(d.y_train.numpy(), rate, 10, seed=101)
    feats = d.x_train.flatten(1).numpy()
    print(f"\nlabel issues on digits: {truth.sum()} of {len(noisy)} training labels flipped ({rate:.0%})")

    def ranked(probs):
        found = np.zeros(len(noisy), dtype=bool)
        found[find_label_issues(noisy, probs, return_indices_ranked_by="self_confidence")] = True
        return found

    def datalab(**kw):
        lab = Datalab(data={"label": noisy}, label_name="label", verbosity=0)
        lab.find_issues(issue_types={"label": {}}, **kw)
        return lab.get_issues("label")["is_label_issue"].to_numpy()

    probs, t_p = timed(lambda: kfold_probs(d.x_train, noisy))
    f_o, t_o = timed(lambda: ranked(probs))
    f_d, t_d = timed(lambda: datalab(pred_probs=probs))
    print(f"  same 5-fold SmallCNN probabilities ({t_p:.1f} s to train): ours (find_label_issues) {_prf(f_o, truth)}, "
          f"{t_o:.2f} s; Datalab label {_prf(f_d, truth)}, {t_d:.2f} s ({t_d / max(t_o, 1e-9):.1f}x ours)")
    (f_p, t_pp) = timed(lambda: ranked(proxy_probabilities(feats, noisy, 10, 5, 0)))
    f_k, t_k = timed(lambda: datalab(features=feats))
    print(f"  raw pixels only: ours (5-fold logistic regression proxy) {_prf(f_p, truth)}, {t_pp:.2f} s; "
          f"Datalab label from features (its kNN) {_prf(f_k, truth)}, {t_k:.2f} s ({t_k / max(t_pp, 1e-9):.1f}x ours)")


def big(n_train: int, n_test: int, dim: int, with_datalab: bool) -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.randn(n_train, dim, generator=g)
    test = torch.randn(n_test, dim, generator=g)
    inj, src = jittered_copies(train, 500, 0.05, (-1e9, 1e9), seed=1)
    test[:500] = inj
    ytr, yte = np.zeros(n_train, dtype=int), np.zeros(n_test, dtype=int)
    flags, secs = timed(lambda: ours(train, ytr, test, yte))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nleakage at scale: {n_train:,} train x {n_test:,} test rows, {dim}-d float32 embeddings")
    print(f"  ours: {secs:.1f} s (threshold calibration, hashing, blockwise nearest neighbours); recall on 500 "
          f"injected copies {flags[:500].mean():.1%}; peak RSS {rss:,.0f} MB (data alone "
          f"{(n_train + n_test) * dim * 4 / 2**20:,.0f} MB)")
    if with_datalab:
        fl, t_d = timed(lambda: datalab_near_duplicates(train.numpy(), ytr, test.numpy(), yte))
        print(f"  Datalab near_duplicate: {t_d:.1f} s; recall {fl[:500].mean():.1%}; ours is {t_d / secs:.1f}x "
              f"faster")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=200)
    p.add_argument("--flip-rate", type=float, default=0.1)
    p.add_argument("--big", action="store_true", help="also time the 50k x 10k x 512 leakage check")
    p.add_argument("--datalab-big", action="store_true", help="also run Datalab on the big data (slow)")
    p.add_argument("--n-train", type=int, default=50_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=512)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("cleanlab").setLevel(logging.ERROR)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    digits_recall(args.copies)
    label_issues(args.flip_rate)
    if args.big:
        big(args.n_train, args.n_test, args.dim, args.datalab_big)


if __name__ == "__main__":
    main()
