"""Perturbation generators and adversarial training, written natively in torch.

``ATTACKS`` is the only registry of evasion attacks: name -> function with the signature
``attack(model, x, y, *, eps, norm, clip, **params) -> AttackOutput``. ``ATTACK_FAMILY`` says which settings an
attack takes ("pgd", "apgd", "fab": steps and restarts; "score": queries; "single": none).
"""
from attacks.apgd import apgd, apgd_ce, apgd_dlr
from attacks.base import AttackOutput, Norm
from attacks.fab import fab, fab_t
from attacks.fgsm import fgsm
from attacks.losses import MIN_CLASSES as LOSS_MIN_CLASSES
from attacks.pgd import pgd
from attacks.square import square
from attacks.targeted import apgd_t, pgd_t

ATTACKS = {"fgsm": fgsm, "pgd": pgd, "pgd_t": pgd_t, "apgd_ce": apgd_ce, "apgd_dlr": apgd_dlr, "apgd_t": apgd_t,
           "fab": fab, "fab_t": fab_t, "square": square}
ATTACK_FAMILY = {"fgsm": "single", "pgd": "pgd", "pgd_t": "pgd", "apgd_ce": "apgd", "apgd_dlr": "apgd",
                 "apgd_t": "apgd", "fab": "fab", "fab_t": "fab", "square": "score"}
ATTACK_LABELS = {"fgsm": "FGSM", "pgd": "PGD", "pgd_t": "PGD-T", "apgd_ce": "APGD-CE", "apgd_dlr": "APGD-DLR",
                 "apgd_t": "APGD-T", "fab": "FAB", "fab_t": "FAB-T", "square": "Square"}
MIN_CLASSES = {"apgd_dlr": LOSS_MIN_CLASSES["dlr"]}  # DLR divides by z_pi1 - z_pi3
IMAGES_ONLY = ("square",)  # square windows need (N, C, H, W) inputs

__all__ = ["ATTACKS", "ATTACK_FAMILY", "ATTACK_LABELS", "AttackOutput", "IMAGES_ONLY", "MIN_CLASSES", "Norm", "apgd",
           "fab", "fab_t", "fgsm", "pgd", "square"]
