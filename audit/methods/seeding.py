"""The one way advaudit touches the global random generators: inside ``seeded(seed)``, which seeds torch's (CPU
and the current CUDA device's) and numpy's global generators and restores their previous state afterwards.

Code that advaudit writes draws from explicit ``torch.Generator``/``numpy.random.Generator`` objects; the global
generators are used only by what cannot take one: a model's weight initialisation, dropout and mixup during
training, and ART's and scikit-learn's numpy-global draws. Seeds are derived per unit of work (``unit_seed``), not
from call order, so the same unit gives the same result wherever and whenever it runs.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch


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
