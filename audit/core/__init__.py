"""The lowest room: the result model, its metrics and statistics, errors and strict serde. No torch import here,
so reading a results.json (``audit.core.result.AuditResult.from_dict``) is cheap."""
