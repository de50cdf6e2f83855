"""C14: no catastrophic overfitting during FGSM training done by this audit: PGD accuracy on a training probe never
falls more than ``catastrophic_drop`` from its best epoch."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult


class CatastrophicOverfitting(ValidityCheck):
    id, name = "C14", "no catastrophic overfitting"

    def evaluate(self, p: Probe) -> ValidityResult:
        d = p.defence
        if d is None or d.method not in ("fgsm_rs", "fgsm"):
            return self.result(SKIPPED, "not trained with FGSM")
        if p.training is None:
            return self.result(SKIPPED, "trained outside this audit (checkpoint)")
        history = list(p.training.guard_history)
        values = {"pgd_probe_accuracy_per_epoch": history}
        if p.training.stopped_early:
            return self.result(WARN, p.training.stopped_early, values)
        drops = [max(history[:i]) - h for i, h in enumerate(history) if i]
        worst = max(drops, default=0.0)
        text = (f"PGD-10 accuracy on a 256-point training probe per epoch: "
                f"{', '.join(f'{h:.0%}' for h in history)}; largest fall from the best epoch {max(worst, 0):.0%}")
        if worst > p.thresholds.catastrophic_drop:
            return self.result(FAIL, text, values)
        return self.result(PASS, text, values)
