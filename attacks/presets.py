"""Attack presets: named, documented settings of the whole attack grid and its validity probes.

Every value is printed in the report. A key set explicitly in ``[attacks]`` overrides the preset's value. An
attack in ``chain`` runs, as in AutoAttack, only on the points every earlier attack of the chain left robust, so
its reported accuracy is that of the chain so far; attacks outside the chain attack every clean-correct point.

quick     a smoke test and the demo: FGSM and PGD-10; probes on 128 points; native Square (300 queries) as the
          black-box cross-check on up to 64 white-box-robust probe points.
standard  AutoAttack's standard set at its settings (Croce & Hein 2020): APGD-CE (100 steps), APGD-T (100 steps,
          9 targets), FAB-T (100 steps, 9 targets), Square (5,000 queries, p_init 0.8), each on the points still
          robust, the worst case per example; plus FGSM, standalone, for the single-step validity check (C16).
thorough  AutoAttack's "plus" set: adds APGD-DLR and untargeted FAB, 5 restarts of APGD-CE/DLR, FAB and Square;
          plus FGSM and PGD-50 x 3, standalone; probes on 512 points.
"""
from __future__ import annotations

AUTOATTACK_STANDARD = ("apgd_ce", "apgd_t", "fab_t", "square")
AUTOATTACK_PLUS = ("apgd_ce", "apgd_dlr", "fab", "square", "apgd_t", "fab_t")

PRESETS: dict[str, dict] = {
    "quick": {"attacks": ("fgsm", "pgd"), "chain": (), "pgd_steps": 10, "pgd_restarts": 1, "apgd_steps": 25,
              "apgd_restarts": 1, "n_targets": 3, "fab_steps": 50, "fab_restarts": 1, "square_queries": 300,
              "square_restarts": 1, "square_p_init": 0.8, "probe_points": 128, "square_points": 64},
    "standard": {"attacks": ("fgsm", *AUTOATTACK_STANDARD), "chain": AUTOATTACK_STANDARD, "pgd_steps": 20,
                 "pgd_restarts": 1, "apgd_steps": 100, "apgd_restarts": 1, "n_targets": 9, "fab_steps": 100,
                 "fab_restarts": 1, "square_queries": 5000, "square_restarts": 1, "square_p_init": 0.8,
                 "probe_points": 256, "square_points": 64},
    "thorough": {"attacks": ("fgsm", "pgd", *AUTOATTACK_PLUS), "chain": AUTOATTACK_PLUS, "pgd_steps": 50,
                 "pgd_restarts": 3, "apgd_steps": 100, "apgd_restarts": 5, "n_targets": 9, "fab_steps": 100,
                 "fab_restarts": 5, "square_queries": 5000, "square_restarts": 5, "square_p_init": 0.8,
                 "probe_points": 512, "square_points": 512},
}
DEFAULT_PRESET = "standard"
