"""The config room: the config schema, loading (+ ``--set``), paths resolved once at load, and the policy."""
from audit.config.attacks import AttackConfig
from audit.config.audit_config import AuditConfig, replace
from audit.config.data_checks import BackdoorConfig, DatalabConfig, LabelIssuesConfig, LeakageConfig, TestOutliersConfig
from audit.config.defences import DefenceConfig
from audit.config.load import config_from_data, demo_config, load_config
from audit.config.sections import DataConfig, InputConfig, ModelConfig, OutputConfig, ReviewerConfig, TrainingConfig
from audit.config.threat import ThreatModelConfig

__all__ = ["AttackConfig", "AuditConfig", "BackdoorConfig", "DataConfig", "DatalabConfig", "DefenceConfig",
           "InputConfig", "LabelIssuesConfig", "LeakageConfig", "ModelConfig", "OutputConfig", "ReviewerConfig",
           "TestOutliersConfig", "ThreatModelConfig", "TrainingConfig", "config_from_data", "demo_config",
           "load_config", "replace"]
