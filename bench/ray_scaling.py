"""Scale-out: the K-fold label-issue stage (the K folds and the self-test's K, as the check runs them) and the
attack grid on 1 and on 2 Ray workers (torch limited to one thread per worker), against the local executor, in one
run on the demo's data and model.

Usage: python bench/ray_scaling.py [--folds 5] [--fold-epochs 10]
Target (issue 19): on a 2-core machine, 2 workers >= 1.6x faster than 1 for both stages; the bits are the same.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import time

import numpy as np
import torch

from audit.checks.label_issues import out_of_fold
from audit.config.data_checks import LabelIssuesConfig
from audit.config.execution import ExecutionConfig
from audit.config.load import demo_config
from audit.engine.execution import make_executor
from audit.engine.pipeline import build_context, prepare
from audit.methods.evaluation import GridRun, evaluate_robustness
from audit.methods.label_issues import flip_labels


def stages(ctx):
    """(seconds of the K-fold stage, seconds of the attack grid, the grid's bits, the probabilities)."""
    t = time.perf_counter()
    labels = ctx.data.y_train.numpy()
    noisy, _ = flip_labels(labels, 0.1, ctx.data.num_classes, 1)
    probs = np.concatenate(out_of_fold(ctx, "kfold", labels, noisy))  # the check's K folds and its self-test's K
    t_fold = time.perf_counter() - t
    a = ctx.config.attacks
    t = time.perf_counter()
    ev = evaluate_robustness(ctx.variants["pgd_at"].model, ctx.data.x_test, ctx.data.y_test,
                             GridRun(settings=a, clip=ctx.data.attack_clip, device=ctx.device, seed=ctx.config.seed,
                                     num_classes=ctx.data.num_classes),
                             executor=ctx.executor, shards=max(ctx.executor.workers, 1) * 2)
    return t_fold, time.perf_counter() - t, ev.correct, probs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold-epochs", type=int, default=10)
    args = p.parse_args()
    logging.getLogger("ray").setLevel(logging.ERROR)
    base = demo_config()
    base = dataclasses.replace(base, label_issues=LabelIssuesConfig(folds=args.folds, epochs=args.fold_epochs),
                               attacks=dataclasses.replace(base.attacks, batch_size=64))
    torch.set_num_threads(1)
    ctx = build_context(prepare(base))  # the variants once, locally: the stages below are what is measured
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; demo data, "
          f"{args.folds} folds x {args.fold_epochs} epochs, attack grid {base.attacks.attacks} x {base.attacks.eps} "
          f"on pgd_at; one torch thread per worker", flush=True)
    rows = {}
    for label, execution in (("local, 1 thread", None),
                             ("ray, 1 worker", ExecutionConfig(executor="ray", cluster_cpus=1, num_cpus=1)),
                             ("ray, 2 workers", ExecutionConfig(executor="ray", cluster_cpus=2, num_cpus=1))):
        if execution is not None:
            ctx.executor.close()
            ctx = dataclasses.replace(ctx, executor=make_executor(dataclasses.replace(base, execution=execution),
                                                                  ctx.recorder))
            stages(ctx)  # warm-up: workers started, modules imported, objects stored
        rows[label] = stages(ctx)
        print(f"{label:16s} K-fold {rows[label][0]:6.1f} s   attack grid {rows[label][1]:6.1f} s", flush=True)
    ctx.executor.close()
    one, two = rows["ray, 1 worker"], rows["ray, 2 workers"]
    same = all(np.array_equal(one[2][k], two[2][k]) for k in one[2]) and np.array_equal(one[3], two[3])
    print(f"2 workers vs 1: K-fold {one[0] / two[0]:.2f}x, attack grid {one[1] / two[1]:.2f}x (target >= 1.6x); "
          f"bits identical: {same}; local (1 thread) vs ray 1 worker: K-fold {rows['local, 1 thread'][0] / one[0]:.2f}x"
          f" the time")


if __name__ == "__main__":
    main()
