"""C6: a black-box attack is not stronger than the white-box ones: ART's SquareAttack (true labels, clip values,
seeded) on up to ``square_points`` probe points that every white-box attack left correctly classified; a point
Square breaks there is one the gradients missed (gradient masking)."""
from __future__ import annotations

import numpy as np
import torch

from attacks.base import Norm
from audit.checks.validity.base import FAIL, PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult
from audit.methods.art_adapter import art_classifier, one_hot, still_correct
from audit.methods.seeding import seeded


class BlackBox(ValidityCheck):
    id, name = "C6", "black-box not stronger than white-box"

    def evaluate(self, p: Probe) -> ValidityResult:
        if p.x.dim() != 4:
            return self.result(SKIPPED, "ART's Square attack handles image inputs (N, C, H, W) only")
        if min(p.x.shape[2], p.x.shape[3]) < 3:
            return self.result(SKIPPED, "images smaller than 3x3")
        wb = p.grid_worst(p.eps)
        rows = np.flatnonzero(wb)[:p.settings.square_points]
        values = {"eps": p.eps, "queries": p.settings.square_queries, "white_box_robust": int(wb.sum()),
                  "attacked": int(rows.size)}
        if rows.size == 0:
            return self.result(PASS, f"no probe point survives the white-box attacks at eps {p.eps:g}: nothing "
                               "left for a black-box attack to break", values)
        from art.attacks.evasion import SquareAttack
        sel = torch.from_numpy(rows).to(p.x.device)
        x, y = p.x[sel], p.y[sel]
        clf = art_classifier(p.model, x.shape[1:], p.num_classes, p.clip)
        with seeded(p.seed):  # ART's Square draws from numpy's global generator
            atk = SquareAttack(clf, norm=np.inf if p.norm is Norm.LINF else 2, eps=p.eps,
                               max_iter=p.settings.square_queries, nb_restarts=1, batch_size=p.settings.batch_size,
                               verbose=False)
            adv = atk.generate(x=x.cpu().numpy(), y=one_hot(y, p.num_classes))
        only_bb = int((~still_correct(p.model, adv, y)).sum())
        n = len(wb)
        values.update(broken_only_by_square=only_bb, share_of_probe=only_bb / n)
        text = (f"Square ({p.settings.square_queries} queries, eps {p.eps:g}) breaks {only_bb} of the {rows.size} "
                f"probe points every white-box attack left correct")
        if only_bb == 0:
            return self.result(PASS, text, values)
        t = p.thresholds
        status = FAIL if only_bb / n > t.black_box_fail_share and only_bb >= t.black_box_fail_points else WARN
        return self.result(status, text + ": gradients mislead the white-box attacks on these points (gradient "
                           "masking)", values)
