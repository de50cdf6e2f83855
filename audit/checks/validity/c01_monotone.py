"""C1: robust accuracy never rises with eps, for any attack and for the per-example worst case.

Between two consecutive eps of the grid, the per-example masks pair the points: ``reversals`` are points an attack
broke at the smaller eps and not at the larger, ``forwards`` the opposite. A ball contains every smaller one, so a
reversal is a failure of the larger-eps attack on that point. A rise of the accuracy fails when it exceeds the
half-width of the 95% interval of the paired difference (1.96 sqrt(reversals + forwards) / n: a rise the paired
data cannot explain as noise), capped by the policy's ``tolerance``; any rise at all of the per-example worst case
is at least a warning naming the points (the reported worst case closes over eps, audit/methods/worst_case.py, so
those points count as broken there, but the larger-eps attacks missed them)."""
from __future__ import annotations

import math

from audit.checks.validity.base import FAIL, PASS, WARN, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE

Z95 = 1.96


def step(p: Probe, attack: str, lo: float, hi: float) -> dict:
    """One attack from eps ``lo`` to ``hi``: accuracies, paired counts and the tolerance a rise is judged by."""
    acc, policy = p.accuracy(), p.thresholds.tolerance
    row = {"attack": attack, "lo": lo, "hi": hi, "acc_lo": acc[(attack, lo)], "acc_hi": acc[(attack, hi)]}
    m_lo, m_hi = p.grid.correct.get((attack, lo)), p.grid.correct.get((attack, hi))
    if m_lo is None or m_hi is None or len(m_lo) != len(m_hi) or not len(m_lo):
        return {**row, "reversals": None, "forwards": None, "tolerance": policy}
    n = len(m_lo)
    rev, fwd = int((m_hi & ~m_lo).sum()), int((m_lo & ~m_hi).sum())
    return {**row, "n": n, "reversals": rev, "forwards": fwd,
            "tolerance": min(policy, Z95 * math.sqrt(rev + fwd) / n)}


def describe(r: dict) -> str:
    text = f"{r['attack']} {r['acc_lo']:.1%} at eps {r['lo']:g} -> {r['acc_hi']:.1%} at eps {r['hi']:g}"
    if r["reversals"] is not None:
        text += (f" ({r['reversals']} of {r['n']} points broken at eps {r['lo']:g} survive at {r['hi']:g}, "
                 f"{r['forwards']} newly broken; tolerance {r['tolerance']:.2%})")
    return text


class Monotone(ValidityCheck):
    id, name = "C1", "monotone in eps"

    def evaluate(self, p: Probe) -> ValidityResult:
        acc = p.accuracy()
        grid = sorted({e for _, e in acc})
        steps = [step(p, a, lo, hi) for a in sorted({a for a, _ in acc}) for lo, hi in zip(grid, grid[1:], strict=False)
                 if (a, lo) in acc and (a, hi) in acc]
        bad = [describe(r) for r in steps if r["acc_hi"] - r["acc_lo"] > r["tolerance"]]
        worst = [r for r in steps if r["attack"] == WORST_CASE and r["acc_hi"] > r["acc_lo"]
                 and describe(r) not in bad]
        reversals = {f"{r['attack']} {r['lo']:g}->{r['hi']:g}": r["reversals"] for r in steps if r["reversals"]}
        values = {"violations": bad, "worst_case_rises": [describe(r) for r in worst], "reversals": reversals}
        if bad:
            return self.result(FAIL, "robust accuracy rises with eps beyond what the paired data explain as noise: "
                               + "; ".join(bad) + ": the attacks at the larger eps fail on points a smaller ball "
                               "already breaks (gradient masking, or too few steps)", values)
        if worst:
            points = sum(r["reversals"] or 0 for r in worst)
            return self.result(WARN, f"the per-example worst case rises with eps ({'; '.join(map(describe, worst))})"
                               f": {points} point(s) broken at a smaller eps survive every attack at the larger "
                               f"one, so the larger-eps attacks are weaker than they should be there (gradient "
                               f"masking, or too few steps); the reported worst case counts them as broken", values)
        total = sum(r["reversals"] or 0 for r in steps if r["attack"] == WORST_CASE)
        return self.result(PASS, f"no attack gains accuracy as eps grows ({len(grid)} eps; a rise is judged against "
                           f"the paired 95% interval, at most {p.thresholds.tolerance:.0%}; {total} point(s) of the "
                           f"worst case broken at an eps and not at the next)", values)
