"""The registry of checks: ``CHECKS`` is the only list; its order is the report's order."""
from audit.checks.art_agreement import ArtAgreement
from audit.checks.attack_validity import AttackValidity
from audit.checks.backdoor import BackdoorScreen
from audit.checks.calibration import Calibration
from audit.checks.clean_accuracy import CleanAccuracy
from audit.checks.corruptions import Corruptions
from audit.checks.data_impact import DataImpact
from audit.checks.datalab_issues import DatalabIssues
from audit.checks.input_validation import InputValidation
from audit.checks.label_issues import LabelIssues
from audit.checks.leakage import Leakage
from audit.checks.ood import OutOfDistribution
from audit.checks.retrain_cleaned import RetrainCleaned
from audit.checks.robustness import Robustness
from audit.checks.test_outliers import TestOutliers

CHECKS = {c.id: c for c in (InputValidation(), CleanAccuracy(), Robustness(), AttackValidity(), ArtAgreement(),
                            Calibration(), Corruptions(), OutOfDistribution(), LabelIssues(), Leakage(),
                            DatalabIssues(), TestOutliers(), BackdoorScreen(), DataImpact(),
                            RetrainCleaned())}
