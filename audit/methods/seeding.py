"""The one way advaudit touches the global random generators: inside ``seeded(seed)``, which seeds torch's (CPU
and the current CUDA device's) and numpy's global generators and restores their previous state afterwards.

Code that advaudit writes draws from explicit ``torch.Generator``/``numpy.random.Generator`` objects; the global
generators are used only by what cannot take one: a model's weight initialisation, dropout and mixup during
training, and ART's and scikit-learn's numpy-global draws. Seeds are derived per unit of work (``unit_seed``), not
from call order, so the same unit gives the same result wherever and whenever it runs.

Every derived seed is the run's seed plus the fixed offset of a named stream (below), plus an index where one
stream feeds many units (fold k, batch i). The offsets are part of the results: changing one changes the bits.
The perturbation library (attacks/) keeps its own two derived seeds inside ``train``: seed + 1 orders the held-out
split, seed + 2 seeds the monitor's attack.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from audit.data.subsample import TEST_SUBSAMPLE_OFFSET


@contextlib.contextmanager
def seeded(seed: int):
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)


def unit_seed(seed: int, offset: int) -> int:
    """The seed of one unit of work: the run's seed plus the unit's fixed offset (every unit has its own)."""
    return int(seed) + int(offset)


@dataclass(frozen=True)
class Stream:
    """A named seed stream: ``seed(run_seed, index)`` is ``run_seed + offset + index``."""

    name: str
    offset: int
    doc: str

    def seed(self, run_seed: int, index: int = 0) -> int:
        return unit_seed(run_seed, self.offset + int(index))


TRAIN = Stream("train", 0, "variant training and every model rebuilt to load its weights (the run's seed itself)")
FOLD_TRAIN = Stream("fold_train", 0, "K-fold fold k's batch order: seed + k")
FOLD_INIT = Stream("fold_init", 1, "K-fold fold k's weight initialisation: seed + 1 + k")
PROBE_POINTS = Stream("probe_points", 3, "which test points the attack-validity checks probe")
SHIFTED_INPUTS = Stream("shifted_inputs", 7, "the ood check's shifted copies of the test split")
VALIDITY_ATTACK = Stream("validity_attack", 7, "the random starts of the validity checks' own attacks")
DEPLOY_PGD = Stream("deploy_pgd", 0, "the deployments check's PGD on batch i (i the batch's first row)")
DEPLOY_SQUARE = Stream("deploy_square", 7, "the deployments check's Square attack on batch i")
VALIDITY_NOISE = Stream("validity_noise", 11, "the random-noise validity check (C5)'s noise")
LEAK_SELFTEST = Stream("leak_selftest", 0, "the leakage self-test's jittered copies at sigma number k")
KMEANS_RESTART = Stream("kmeans_restart", 0, "restart r of the backdoor screen's k-means (ART draws from numpy's "
                        "global generator)")
LABEL_SELFTEST = Stream("label_selftest", 101, "the label-issues self-test's flipped labels")
BACKDOOR_SELFTEST = Stream("backdoor_selftest", 202, "the backdoor self-test's poisoned copy and its training")
FINETUNE = Stream("finetune", 303, "fine-tuning a deployed copy of a variant")
CERTIFIED_POINTS = Stream("certified_points", 13, "which test points the certified check bounds when "
                          "[checks.certified] points subsamples")
TEST_SUBSAMPLE = Stream("test_subsample", TEST_SUBSAMPLE_OFFSET, "which test points [data] max_test keeps (the data "
                        "room draws them, audit.data.subsample: it sits below this room and holds the offset)")
STREAMS = (TRAIN, FOLD_TRAIN, FOLD_INIT, PROBE_POINTS, SHIFTED_INPUTS, VALIDITY_ATTACK, DEPLOY_PGD, DEPLOY_SQUARE,
           VALIDITY_NOISE, LEAK_SELFTEST, KMEANS_RESTART, LABEL_SELFTEST, BACKDOOR_SELFTEST, FINETUNE, CERTIFIED_POINTS,
           TEST_SUBSAMPLE)
