"""C13: eps is in the units of the input range (8/255 on [0, 1] images, not 8)."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, WARN, Probe, ValidityCheck, ValidityResult


class EpsUnits(ValidityCheck):
    id, name = "C13", "eps units"

    def evaluate(self, p: Probe) -> ValidityResult:
        eps = max(pt.eps for pt in p.grid.points)
        width = p.range_width
        values = {"max_eps": eps, "range": width}
        if eps > width:
            return self.result(FAIL, f"eps {eps:g} exceeds the input range {width:g}: eps is probably in the wrong "
                               f"units (e.g. 8 instead of 8/255)", values)
        if p.norm.value == "linf" and eps > 0.5 * width:
            return self.result(WARN, f"Linf eps {eps:g} is more than half the input range {width:g}: any input can "
                               f"be moved to mid-grey; check the units", values)
        return self.result(PASS, f"largest eps {eps:g} within the input range {width:g}", values)
