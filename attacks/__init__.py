"""Perturbation generators and adversarial training, written natively in torch.

``ATTACKS`` (attacks/spec.py) is the only registry of evasion attacks: name -> ``AttackSpec``, each registered next
to its definition (fgsm.py, pgd.py with PGD-T, apgd.py with APGD-T, fab.py, square.py; imported here in the order
the registry lists them). A spec carries the attack's label, function, parameter dataclass, its report text and
what it needs (classes, images); calling it with keywords runs the attack:
``ATTACKS["pgd"](model, x, y, eps=0.1, steps=10) -> AttackOutput``.
"""
from attacks.fgsm import fgsm  # noqa: I001  (the import order is the registry's order)
from attacks.pgd import pgd, pgd_t
from attacks.apgd import apgd, apgd_ce, apgd_dlr, apgd_t
from attacks.fab import fab, fab_t
from attacks.square import square
from attacks.base import AttackOutput, Ball, Norm
from attacks.spec import ATTACKS, AttackSpec

__all__ = ["ATTACKS", "AttackOutput", "AttackSpec", "Ball", "Norm", "apgd", "apgd_ce", "apgd_dlr", "apgd_t", "fab",
           "fab_t", "fgsm", "pgd", "pgd_t", "square"]
