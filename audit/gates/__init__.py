"""Validity gates C1-C15 on a robustness evaluation. ``GATES`` is the only registry: id -> gate function, in
report order."""
from audit.gates.base import GateResult, Probe, worst
from audit.gates.grid import c1_monotone, c2_iterative, c10_validity, c12_worst_case, c13_eps_units, c15_true_labels
from audit.gates.model_health import c7_gradient_health, c8_determinism, c9_logits
from audit.gates.probes import c3_convergence, c4_unbounded, c5_noise, c6_black_box
from audit.gates.training import c11_reference, c14_catastrophic_overfitting

GATES = {"C1": c1_monotone, "C2": c2_iterative, "C3": c3_convergence, "C4": c4_unbounded, "C5": c5_noise,
         "C6": c6_black_box, "C7": c7_gradient_health, "C8": c8_determinism, "C9": c9_logits,
         "C10": c10_validity, "C11": c11_reference, "C12": c12_worst_case, "C13": c13_eps_units,
         "C14": c14_catastrophic_overfitting, "C15": c15_true_labels}

__all__ = ["GATES", "GateResult", "Probe", "worst"]
