"""The registry of checks: ``CHECKS`` is the only list; its order (each check's ``rank``) is the report's order.

One check per file ``audit/checks/<id>.py``, its class registered with ``@register`` next to its definition; every
module of this package is imported here, so a new check file is found without being listed anywhere. Validity
checks C1-C16 live in ``validity/`` (they are parts of the attack_validity check, not checks of their own).
"""
import importlib
import pkgutil

from audit.checks.base import REGISTERED, Check

for _module in pkgutil.iter_modules(__path__):
    if not _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")

CHECKS: dict[str, Check] = {c.id: c for c in sorted(REGISTERED.values(), key=lambda c: c.rank)}


def details_types() -> dict[str, type]:
    """check id -> its Details dataclass (to read a results.json with typed details)."""
    return {cid: c.Details for cid, c in CHECKS.items()}
