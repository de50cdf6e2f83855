"""C3: the grid's iterative attacks have converged: doubling their steps and adding a restart does not lower the
worst-case robust accuracy on the probe points beyond the tolerance."""
from __future__ import annotations

from attacks import ATTACKS
from audit.checks.validity.base import FAIL, PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult


class Convergence(ValidityCheck):
    id, name = "C3", "convergence"

    def evaluate(self, p: Probe) -> ValidityResult:
        s = p.settings
        base = p.grid_worst(p.eps)
        stronger = base.copy()
        runs = []
        for attack in s.attacks:
            params = s.params(attack)
            if not ATTACKS[attack].gradient_ascent or attack in p.grid.skipped:
                continue  # convergence in steps is a property of the gradient-ascent attacks
            params.update(steps=2 * params["steps"], restarts=params["restarts"] + 1)
            # only points still robust can change: a point the grid broke stays broken in the combined worst case
            stronger &= p.robust_under(attack, p.eps, only=stronger.copy(),
                                       source=f"C3 {attack} {params['steps']} steps x {params['restarts']}", **params)
            runs.append(f"{attack} {params['steps']} steps x {params['restarts']}")
        if not runs:
            return self.result(SKIPPED, "no PGD or APGD attack in the grid")
        n = len(base)
        drop = float(base.mean() - stronger.mean())
        values = {"eps": p.eps, "points": n, "grid": float(base.mean()), "stronger": float(stronger.mean()),
                  "drop": drop, "runs": runs}
        text = (f"doubling steps and adding a restart ({'; '.join(runs)}) moves worst-case robust accuracy on {n} "
                f"points at eps {p.eps:g} from {base.mean():.1%} to {stronger.mean():.1%}")
        tol = p.probe_tolerance()
        if drop <= tol:
            return self.result(PASS, text + " (converged)", values)
        status = WARN if drop <= p.thresholds.convergence_warn_factor * tol else FAIL
        return self.result(status, text + ": the grid's attacks have not converged; raise the steps or restarts "
                           "(preset 'thorough')", values)
