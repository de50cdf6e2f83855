"""The validity checks C1-C16 on a robustness evaluation, one per file. ``VALIDITY_CHECKS`` is the only registry:
id -> check, in report order."""
from audit.checks.validity.base import Probe, ValidityResult, worst
from audit.checks.validity.c01_monotone import Monotone
from audit.checks.validity.c02_iterative import Iterative
from audit.checks.validity.c03_convergence import Convergence
from audit.checks.validity.c04_unbounded import Unbounded
from audit.checks.validity.c05_noise import Noise
from audit.checks.validity.c06_black_box import BlackBox
from audit.checks.validity.c07_gradient_health import GradientHealth
from audit.checks.validity.c08_determinism import Determinism
from audit.checks.validity.c09_logits import Logits
from audit.checks.validity.c10_perturbation_validity import PerturbationValidity
from audit.checks.validity.c11_reference import Reference
from audit.checks.validity.c12_worst_case import WorstCase
from audit.checks.validity.c13_eps_units import EpsUnits
from audit.checks.validity.c14_catastrophic_overfitting import CatastrophicOverfitting
from audit.checks.validity.c15_true_labels import TrueLabels
from audit.checks.validity.c16_single_step_gap import SingleStepGap

VALIDITY_CHECKS = {c.id: c for c in (Monotone(), Iterative(), Convergence(), Unbounded(), Noise(), BlackBox(),
                                     GradientHealth(), Determinism(), Logits(), PerturbationValidity(), Reference(),
                                     WorstCase(), EpsUnits(), CatastrophicOverfitting(), TrueLabels(),
                                     SingleStepGap())}

__all__ = ["VALIDITY_CHECKS", "Probe", "ValidityResult", "worst"]
