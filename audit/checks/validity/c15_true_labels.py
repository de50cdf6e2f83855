"""C15: the attacks get the dataset's true labels and robust accuracy is scored against them (no label leaking)."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult


class TrueLabels(ValidityCheck):
    id, name = "C15", "true labels"

    def evaluate(self, p: Probe) -> ValidityResult:
        if not p.labels_are_dataset_labels:
            return self.result(FAIL, "the attacks were not given the dataset's labels")
        return self.result(PASS, "attacks receive the dataset's true labels and robust accuracy is scored against "
                           "them (never the model's predictions)")
