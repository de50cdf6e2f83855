"""Which checks run, in which order: the enabled checks (the config's list, or every registered one), ordered so
that a check runs after the checks it ``requires`` (hard: it is skipped without them) and those it runs ``after``
(soft: it uses their results when they ran). Ties keep the registry's order, which is also the report's order."""
from __future__ import annotations

from audit.checks import CHECKS
from audit.core.errors import UsageError


def enabled_checks(config) -> tuple[str, ...]:
    """The config's list of checks, or every registered check that is on by default."""
    return tuple(config.checks) or tuple(c for c, check in CHECKS.items() if check.by_default)


def execution_order(enabled: tuple[str, ...], registry=CHECKS) -> tuple[str, ...]:
    """``enabled`` in dependency order (a dependency that is not enabled imposes nothing)."""
    pending = [c for c in registry if c in enabled]
    done: list[str] = []
    while pending:
        for c in pending:
            deps = set(registry[c].follows())
            if not (deps & set(pending)):
                done.append(c)
                pending.remove(c)
                break
        else:
            raise UsageError(f"checks: a dependency cycle among {', '.join(pending)}")
    return tuple(done)
