"""Attack presets: named, documented settings of the whole attack grid and its validity probes.

Every value is printed in the report. A key set explicitly in ``[attacks]`` overrides the preset's value.

quick     a smoke test: FGSM and PGD-10; probes on 128 points, Square with 300 queries on up to 64
          white-box-robust points.
standard  the default: FGSM, PGD-20, APGD-CE and APGD-DLR (50 steps each, Croce & Hein 2020); probes on 256
          points; Square with 500 queries on up to 64 points the white-box attacks left correct.
thorough  for a release decision: adds targeted PGD and APGD-T (9 targets), PGD-50 x 3 restarts, APGD 100 steps x
          2 restarts; probes on 512 points; Square with 5,000 queries on up to 512 white-box-robust points.
"""
from __future__ import annotations

PRESETS: dict[str, dict] = {
    "quick": {"attacks": ("fgsm", "pgd"), "pgd_steps": 10, "pgd_restarts": 1, "apgd_steps": 25,
              "apgd_restarts": 1, "n_targets": 3, "probe_points": 128, "square_queries": 300,
              "square_points": 64},
    "standard": {"attacks": ("fgsm", "pgd", "apgd_ce", "apgd_dlr"), "pgd_steps": 20, "pgd_restarts": 1,
                 "apgd_steps": 50, "apgd_restarts": 1, "n_targets": 3, "probe_points": 256,
                 "square_queries": 500, "square_points": 64},
    "thorough": {"attacks": ("fgsm", "pgd", "pgd_t", "apgd_ce", "apgd_dlr", "apgd_t"), "pgd_steps": 50,
                 "pgd_restarts": 3, "apgd_steps": 100, "apgd_restarts": 2, "n_targets": 9, "probe_points": 512,
                 "square_queries": 5000, "square_points": 512},
}
DEFAULT_PRESET = "standard"
