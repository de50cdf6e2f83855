"""The registry of checks: ``CHECKS`` is the only list; its order is the report's order. One check per file,
its id equal to its file name and (in CamelCase) its class name; validity checks C1-C16 live in ``validity/``."""
from audit.checks.art_agreement import ArtAgreement
from audit.checks.attack_validity import AttackValidity
from audit.checks.backdoor import Backdoor
from audit.checks.calibration import Calibration
from audit.checks.clean_accuracy import CleanAccuracy
from audit.checks.corruptions import Corruptions
from audit.checks.data_impact import DataImpact
from audit.checks.datalab import Datalab
from audit.checks.deployments import Deployments
from audit.checks.input_validation import InputValidation
from audit.checks.label_issues import LabelIssues
from audit.checks.leakage import Leakage
from audit.checks.ood import Ood
from audit.checks.retrain_cleaned import RetrainCleaned
from audit.checks.robustness import Robustness
from audit.checks.test_outliers import TestOutliers
from audit.checks.training_health import TrainingHealth

CHECKS = {c.id: c for c in (InputValidation(), CleanAccuracy(), TrainingHealth(), Robustness(), AttackValidity(), ArtAgreement(),
                            Calibration(), Corruptions(), Ood(), Deployments(), LabelIssues(), Leakage(), Datalab(),
                            TestOutliers(), Backdoor(), DataImpact(), RetrainCleaned())}


def details_types() -> dict[str, type]:
    """check id -> its Details dataclass (to read a results.json with typed details)."""
    return {cid: c.Details for cid, c in CHECKS.items()}
