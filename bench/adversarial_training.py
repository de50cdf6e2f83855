"""Adversarial-training epoch throughput: ours against ART's trainers, same model, data, batch and settings,
measured in one run. PGD-7 AT vs ART's AdversarialTrainerMadryPGD; FGSM-RS vs ART's AdversarialTrainerFBFPyTorch.

Usage: python bench/adversarial_training.py [--epochs 2] [--device cpu|cuda] [--model small|resnet]
Prints images/s per trainer and the ratios (ours / ART). Issue 5 targets: GPU PGD-7 >= 10x MadryPGD and
FGSM-RS >= 3x FBF; CPU no slower than ART.
"""
from __future__ import annotations

import argparse
import logging
import platform
import time

import numpy as np
import torch

from attacks.pgd import default_step_size
from attacks.training import Adversary, Recipe, train
from audit.data.sources.builtin import load_digits
from audit.models.reference import SmallCNN

EPS, STEPS, BATCH = 0.1, 7, 128


def art_classifier(model, shape, device):
    from art.estimators.classification import PyTorchClassifier
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), optimizer=opt, input_shape=shape,
                             nb_classes=10, clip_values=(0.0, 1.0), device_type="gpu" if device == "cuda" else "cpu")


def data(device: str, repeat: int):
    d = load_digits(seed=0)
    x, y = d.x_train.repeat(repeat, 1, 1, 1), d.y_train.repeat(repeat)
    return x, y


def timed(fn, device) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeat", type=int, default=2, help="copies of the digits train split (more data per epoch)")
    args = p.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    torch.manual_seed(0)
    x, y = data(args.device, args.repeat)
    n = x.shape[0] * args.epochs
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, device {args.device}; "
          f"{x.shape[0]} images x {args.epochs} epochs, batch {BATCH}, Linf eps {EPS}")
    from art.defences.trainer import AdversarialTrainerFBFPyTorch, AdversarialTrainerMadryPGD
    rows = []

    def ours(method):
        model = SmallCNN().to(args.device)
        adv = Adversary(method, EPS, steps=STEPS)
        recipe = Recipe(epochs=args.epochs, batch_size=BATCH, seed=0, overfit_guard=False)
        return timed(lambda: train(model, x, y, recipe, adv), args.device)

    def art_madry():
        model = SmallCNN().to(args.device)
        trainer = AdversarialTrainerMadryPGD(art_classifier(model, x.shape[1:], args.device), nb_epochs=args.epochs,
                                             batch_size=BATCH, eps=EPS, eps_step=default_step_size(EPS, STEPS),
                                             max_iter=STEPS, num_random_init=1)
        xs, ys = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
        return timed(lambda: trainer.fit(xs, ys), args.device)

    def art_fbf():
        model = SmallCNN().to(args.device)
        trainer = AdversarialTrainerFBFPyTorch(art_classifier(model, x.shape[1:], args.device), eps=EPS,
                                               use_amp=False)
        xs, ys = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
        return timed(lambda: trainer.fit(xs, ys, nb_epochs=args.epochs, batch_size=BATCH), args.device)

    pairs = [("PGD-7 adversarial training", lambda: ours("pgd"), "ART AdversarialTrainerMadryPGD", art_madry),
             ("FGSM-RS adversarial training", lambda: ours("fgsm_rs"), "ART AdversarialTrainerFBFPyTorch", art_fbf)]
    for label, ours_fn, peer, peer_fn in pairs:
        t_ours, t_peer = ours_fn(), peer_fn()
        rows.append((label, n / t_ours, peer, n / t_peer))
        print(f"{label}: ours {n / t_ours:,.0f} img/s ({t_ours:.1f} s) | {peer} {n / t_peer:,.0f} img/s "
              f"({t_peer:.1f} s) | ratio {t_peer / t_ours:.2f}x", flush=True)


if __name__ == "__main__":
    main()
