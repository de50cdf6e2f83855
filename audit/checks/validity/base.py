"""What a validity check is: a rule on the attack evaluation with a status (pass, warn, fail, or skipped when it
does not apply) and the evidence behind it. C1-C16 follow REFERENCE section 4 (Carlini et al. 2019, Athalye et
al. 2018, AutoAttack's checks); what each tolerates is the policy's ``[validity]`` table.

Validity checks read a ``Probe``: the variant's full attack grid plus a seeded subsample of the test set on which
the extra probes (stronger attacks, an unbounded attack, noise, a black-box attack, gradient and model checks) run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import Norm, frozen_eval
from audit.config.policy import ValidityThresholds
from audit.core.metrics import WORST_CASE
from audit.core.result import Status
from audit.methods.evaluation import RobustnessEval
from audit.methods.seeding import VALIDITY_ATTACK

PASS, WARN, FAIL, SKIPPED = Status.PASS, Status.WARN, Status.FAIL, Status.SKIPPED   # the findings' vocabulary
RANK = {PASS: 0, SKIPPED: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class ValidityResult:
    """The outcome of one validity check on one variant."""

    id: str
    name: str
    status: Status                # PASS, WARN, FAIL or SKIPPED
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class ValidityCheck:
    """Base of the validity checks: ``id`` ("C1"), ``name``, and ``evaluate(probe) -> ValidityResult``."""

    id: str = ""
    name: str = ""

    def result(self, status: Status, evidence: str, values: dict | None = None) -> ValidityResult:
        return ValidityResult(self.id, self.name, status, evidence, values or {})

    def evaluate(self, p: Probe) -> ValidityResult:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Probe:
    """Everything a validity check may look at, for one variant.

    idx: the probe subsample's indices into the test split; x, y: those points (on ``device``);
    eps: the eps the probes attack at (the policy's gated eps when it is in the grid, else the grid's middle).
    """

    model: torch.nn.Module
    grid: RobustnessEval
    settings: Any            # AttackConfig (resolved)
    idx: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    clip: Any
    device: torch.device
    num_classes: int
    seed: int
    eps: float
    range_width: float
    thresholds: ValidityThresholds = field(default_factory=ValidityThresholds)
    kind: str = "image"       # "image" or "tabular"
    labels_are_dataset_labels: bool = True
    reference: tuple[str, RobustnessEval] | None = None   # (name, grid) of an undefended, naturally trained model
    reference_reason: str = ""
    training: Any = None      # TrainStats of this variant, or None
    defence: Any = None       # DefenceConfig of this variant, or None
    breaks: list = field(default_factory=list)   # (source, eps, attacked, robust) of the probes' own attacks
    results: dict = field(default_factory=dict)  # id -> ValidityResult of the checks that already ran (C1 first)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def norm(self) -> Norm:
        return Norm(self.settings.norm or Norm.LINF)

    def accuracy(self) -> dict:
        """(attack, eps) -> robust accuracy of the full grid."""
        return {(pt.attack, pt.eps): pt.robust_accuracy for pt in self.grid.points}

    def probe_tolerance(self) -> float:
        """The accuracy tolerance of probe comparisons: the policy's, or two probe points when the probe is small."""
        return max(self.thresholds.tolerance, 2.0 / max(len(self.idx), 1))

    def clean_ok(self) -> np.ndarray:
        if "clean" not in self._cache:
            with frozen_eval(self.model), torch.no_grad():
                self._cache["clean"] = (self.model(self.x).argmax(1) == self.y).cpu().numpy()
        return self._cache["clean"]

    def record_breaks(self, source: str, eps: float, attacked: np.ndarray, robust: np.ndarray) -> None:
        """Report an attack a validity check ran inside the ball: ``attacked`` and ``robust`` are booleans over the
        probe points (a point not attacked is ignored). Its breaks count in the variant's worst case
        (audit/methods/worst_case.py). Attacks outside the threat model (C4's unbounded one) are not reported."""
        attacked = np.asarray(attacked, dtype=bool)
        self.breaks.append((source, float(eps), attacked, attacked & ~np.asarray(robust, dtype=bool)))

    def grid_worst(self, eps: float) -> np.ndarray:
        """Per-example worst case of the full grid at ``eps``, on the probe points."""
        return self.grid.correct[(WORST_CASE, eps)][self.idx]

    def robust_under(self, attack: str, eps: float, only: np.ndarray | None = None, source: str = "",
                     **params) -> np.ndarray:
        """Robust-correct mask of the probe points under ``attack`` (seeded; clean errors count as not robust).
        ``only``: attack just these points (a bool mask); the others are reported as not robust. ``source``: name
        the run in the worst case (``record_breaks``); without it the breaks are not counted there."""
        gen = torch.Generator().manual_seed(VALIDITY_ATTACK.seed(self.seed))
        ok = self.clean_ok() if only is None else self.clean_ok() & only
        out = np.zeros(ok.shape, dtype=bool)
        rows = torch.from_numpy(np.flatnonzero(ok)).to(self.x.device)
        if rows.numel():
            xs, ys = self.x[rows], self.y[rows]
            bs = self.settings.batch_size
            for i in range(0, rows.numel(), bs):
                adv = ATTACKS[attack](self.model, xs[i:i + bs], ys[i:i + bs], eps=eps, norm=self.norm,
                                      clip=self.clip, generator=gen, **params).x_adv
                with frozen_eval(self.model), torch.no_grad():
                    out[rows[i:i + bs].cpu().numpy()] = (self.model(adv).argmax(1) == ys[i:i + bs]).cpu().numpy()
        if source:
            self.record_breaks(source, eps, ok, out)
        return out


def worst(results) -> Status:
    return max((r.status for r in results), key=RANK.__getitem__, default=PASS)
