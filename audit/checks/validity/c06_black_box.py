"""C6: a black-box attack is not stronger than the white-box ones. When Square is in the attack grid, the points
it broke that every white-box attack left robust are counted from the grid (at the probe eps, over the whole test
split); otherwise the native Square attack runs on up to ``square_points`` probe points the white-box attacks left
robust. A point Square breaks there is one the gradients missed: gradient masking, unless C3 found that
the white-box attacks had not converged (then more steps and restarts are the remedy)."""
from __future__ import annotations

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import frozen_eval
from audit.checks.validity.base import FAIL, PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE

SCORE_BASED = tuple(name for name, spec in ATTACKS.items() if spec.score_based)


def white_box_robust(p: Probe, eps: float) -> np.ndarray:
    """Per test point: robust under every gradient-based attack of the grid at eps."""
    masks = [m for (a, e), m in p.grid.correct.items() if e == eps and a not in (WORST_CASE, *SCORE_BASED)]
    return np.logical_and.reduce(masks)


class BlackBox(ValidityCheck):
    id, name = "C6", "black-box not stronger than white-box"

    def evaluate(self, p: Probe) -> ValidityResult:
        if p.x.dim() != 4 or min(p.x.shape[2], p.x.shape[3]) < 3:
            return self.result(SKIPPED, "the Square attack perturbs images (N, C, H, W) of at least 3x3 pixels")
        if ("square", p.eps) in p.grid.correct:
            wb = white_box_robust(p, p.eps)
            sq = p.grid.correct[("square", p.eps)]  # in a chain: robust after Square and the attacks before it
            only_bb, attacked, n = int((wb & ~sq).sum()), int(wb.sum()), len(wb)
            source = f"the grid's Square ({p.settings.square_queries:,} queries) on all {n} test points"
            consequence = "; the worst case includes Square's number"
        else:
            wb = p.grid_worst(p.eps)
            rows = np.flatnonzero(wb)[:p.settings.square_points]
            attacked, n = int(rows.size), len(wb)
            if rows.size == 0:
                return self.result(PASS, f"no probe point survives the white-box attacks at eps {p.eps:g}: nothing "
                                   "left for a black-box attack to break",
                                   {"eps": p.eps, "white_box_robust": 0, "attacked": 0})
            sel = torch.from_numpy(rows).to(p.x.device)
            gen = torch.Generator(device=p.x.device).manual_seed(p.seed)
            adv = ATTACKS["square"](p.model, p.x[sel], p.y[sel], eps=p.eps, norm=p.norm, clip=p.clip,
                                    queries=p.settings.square_queries, p_init=p.settings.square_p_init,
                                    generator=gen).x_adv
            with frozen_eval(p.model), torch.no_grad():
                robust_rows = (p.model(adv).argmax(1) == p.y[sel])
            only_bb = int((~robust_rows).sum())
            attacked_mask = np.zeros(len(p.idx), bool)
            attacked_mask[rows] = True
            robust = np.ones(len(p.idx), bool)
            robust[rows] = robust_rows.cpu().numpy()
            p.record_breaks(f"C6 Square ({p.settings.square_queries:,} queries)", p.eps, attacked_mask, robust)
            source = f"native Square ({p.settings.square_queries:,} queries) on {attacked} probe points"
            consequence = ("; Square is not in this preset's grid: its breaks on these probe points are recorded "
                           "for the variant's worst case (preset 'standard' runs it on every point)")
        values = {"eps": p.eps, "queries": p.settings.square_queries, "white_box_robust": int(wb.sum()),
                  "attacked": attacked, "broken_only_by_square": only_bb, "share": only_bb / max(n, 1)}
        text = (f"{source} breaks {only_bb} of the {attacked} points every white-box attack left correct at eps "
                f"{p.eps:g}")
        if only_bb == 0:
            return self.result(PASS, text, values)
        t = p.thresholds
        status = FAIL if only_bb / n > t.black_box_fail_share and only_bb >= t.black_box_fail_points else WARN
        return self.result(status, text + diagnosis(p, values) + consequence, values)


def diagnosis(p: Probe, values: dict) -> str:
    """Why a black-box attack broke points the white-box ones missed: non-convergence when C3 showed that more
    steps and restarts still lower the accuracy (it ran first), else gradient masking."""
    c3 = p.results.get("C3")
    if c3 is not None and c3.status in (FAIL, WARN):
        values["cause"] = "not converged"
        drop = c3.values.get("drop")
        shown = f": more steps and a restart lowered the worst case by {drop:.1%}" if drop is not None else ""
        return (f": the white-box attacks had not converged (C3{shown}), so Square finds points they would break "
                "with more work, not a sign of gradient masking by itself; raise steps/restarts (preset "
                "'thorough') and re-run before suspecting gradient masking")
    values["cause"] = "gradient masking"
    return ": gradients mislead the white-box attacks on these points (gradient masking)"
