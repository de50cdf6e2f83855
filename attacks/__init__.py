"""Perturbation generators and adversarial training, written natively in torch.

``ATTACKS`` is the only registry of evasion attacks: name -> function with the signature
``attack(model, x, y, *, eps, norm, clip, **params) -> AttackOutput``.
"""
from attacks.base import AttackOutput, Norm
from attacks.fgsm import fgsm
from attacks.pgd import pgd

ATTACKS = {"fgsm": fgsm, "pgd": pgd}

__all__ = ["ATTACKS", "AttackOutput", "Norm", "fgsm", "pgd"]
