"""C17: no point that any attack of the run broke may be certified. A certificate proves that no input of the
ball changes the class; an attack that found one contradicts it, so one such point is a bug in the bound
propagation or in the attack (or its break check), and the run fails.

Unlike C1-C16 it does not read the probe: certificates exist only after every attack of the run has been made, so
the certified check evaluates it over all test points, against every break the worst case counts (the grid, the
validity probes, the ART cross-check, the deployment check's attacks), a break at a smaller eps counting at every
larger one (the balls nest), and against the clean predictions (a certified point must be correct without attack).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.validity.base import FAIL, PASS, SKIPPED, ValidityCheck, ValidityResult

SHOWN = 5   # rows named in the evidence


@dataclass(frozen=True)
class SoundnessInput:
    """certified: eps -> per test point, certified correct; robust: eps -> no attack broke it and it is correct
    without attack (the worst case's mask, every recorded break); sources: eps -> attack -> it broke the point."""

    certified: dict[float, np.ndarray]
    robust: dict[float, np.ndarray]
    sources: dict[float, dict[str, np.ndarray]]
    clean_ok: np.ndarray


class Soundness(ValidityCheck):
    id, name = "C17", "certificates sound"

    def evaluate_certificates(self, s: SoundnessInput) -> ValidityResult:
        if not s.certified:
            return self.result(SKIPPED, "no certificates to compare")
        bad, total = [], 0
        for eps, cert in sorted(s.certified.items()):
            robust = s.robust.get(eps)
            if robust is None:
                continue
            wrong = cert & ~robust
            total = max(total, int(wrong.sum()))
            if not wrong.any():
                continue
            rows = np.flatnonzero(wrong)
            by = sorted(k for k, m in s.sources.get(eps, {}).items() if np.any(m[rows]))
            clean = int((wrong & ~s.clean_ok).sum())
            bad.append(f"eps {eps:g}: {int(wrong.sum())} certified point(s) broken (rows "
                       f"{', '.join(map(str, rows[:SHOWN]))}{', ...' if rows.size > SHOWN else ''}; by "
                       f"{', '.join(by) or 'no attack'}{f'; {clean} misclassified without attack' if clean else ''})")
        if bad:
            return self.result(FAIL, "certified points that the run's attacks broke, a bug in the bound propagation "
                               "or the attacks: " + "; ".join(bad), {"violations": total})
        n = max(int(m.sum()) for m in s.certified.values())
        return self.result(PASS, f"none of the {n} certified point(s) was broken by any attack of the run or "
                           f"misclassified without attack", {"violations": 0})
