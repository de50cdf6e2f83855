"""What the framework facts read from a result: a finding's detail fields by name, whether they are typed (the run)
or plain dicts (a results.json read without types), the findings that count as evidence, the defences and the
attack-grid points that attacked something. No check id is written here: a check comes from the rule."""
from __future__ import annotations

from typing import Any

from audit.core.result import AuditResult, Status, VariantResult

USABLE = frozenset({Status.PASS, Status.WARN, Status.FAIL, Status.INFO})  # a crashed or skipped check is no evidence
WORST_CASE = "worst_case"   # audit.core.metrics.WORST_CASE: the per-example minimum, not an attack of its own


def get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of typed details or of their JSON form."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def items(obj: Any, key: str) -> tuple:
    """A field that is a list of records (``rows``, ``validity_checks``), or () when it is anything else: details of
    different checks reuse field names for other things (``rows`` is a count in some)."""
    value = get(obj, key)
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def mapping(obj: Any, key: str) -> dict:
    value = get(obj, key)
    return value if isinstance(value, dict) else {}


def number(obj: Any, key: str) -> float:
    """A numeric field, 0 when it is missing or not a number (a bool is not a count)."""
    value = get(obj, key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def usable(f) -> bool:
    return f.status in USABLE


def defence_names(result: AuditResult) -> set[str]:
    return {str(get(d, "name", "")) for d in result.config.get("defences") or ()}


def defence_origin(result: AuditResult, name: str) -> str:
    """How the run got defence ``name``: its [[defences]] entry names a weights file (loaded) or not (trained)."""
    loaded = any(get(d, "name") == name and get(d, "weights") for d in result.config.get("defences") or ())
    return "loaded from weights, trained elsewhere" if loaded else "trained by this run"


def attacked(point) -> bool:
    """A grid point of a real attack that attacked at least one test point: it spent gradient passes or queries
    (a point whose rows were all skipped, e.g. none was clean-correct, spent neither)."""
    return get(point, "attack") != WORST_CASE and get(point, "n", 0) > 0 and (
        number(point, "example_passes") > 0 or number(point, "forward_passes") > 0)


def judged_variants(result: AuditResult, check: str) -> list[VariantResult]:
    """The variants whose finding of ``check`` (the rule's: the robustness check) ran and was judged: only their
    attack grid is evidence (a crashed or skipped robustness finding leaves no measurement to rely on)."""
    judged = {f.variant for f in result.findings if check and f.check == check and usable(f)}
    return [v for v in result.variants if v.name in judged]
