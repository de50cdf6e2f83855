"""The facts about attacks (audit/frameworks/facts.py lists every fact): which attacks actually attacked something,
where, and which defences were compared on them. An attack counts only where it made gradient passes or queries on
at least one point, and an attack grid only when the variant's robustness finding (the rule's ``check``) ran and was
judged. Each fact says what it found ("" when the evidence is absent)."""
from __future__ import annotations

from audit.core.result import AuditResult, Finding, VariantResult
from audit.frameworks.fields import (
    attacked,
    defence_names,
    defence_origin,
    get,
    items,
    judged_variants,
    mapping,
    number,
    usable,
)

JUDGED = ("pass", "warn", "fail")   # a validity check's outcomes that are evidence (Status is a str enum)


def attack_labels(score_based: bool) -> dict[str, str]:
    """name -> label of every registered attack that reads scores only (``score_based``: the black-box, query
    ones) or uses gradients (not ``score_based``)."""
    from attacks import ATTACKS  # here, not at import: reading a result stays free of torch
    return {name: spec.label for name, spec in ATTACKS.items() if bool(spec.score_based) == score_based}


def score_based_attacks() -> dict[str, str]:
    return attack_labels(True)


def _grid(result: AuditResult, check: str, names: dict[str, str]) -> list[str]:
    """Per variant with a judged robustness finding: the attacks of ``names`` that attacked points in its grid."""
    out = []
    for v in judged_variants(result, check):
        ran = sorted({names[p.attack] for p in v.robustness if p.attack in names and attacked(p)})
        if ran:
            out.append(f"{', '.join(ran)} in the robustness grid of '{v.name}'")
    return out


def gradient_attack_ran(result: AuditResult, f: Finding | None, check: str) -> str:
    """A white-box (gradient) attack attacked points in the grid of a variant whose robustness finding was judged."""
    return "; ".join(_grid(result, check, attack_labels(False)))


def _probe_queries(f: Finding) -> str:
    """The validity probe C6 (a black-box attack on the points the white-box attacks left robust), when it made
    queries: it passes without any when no point survived the white-box attacks (``attacked`` 0)."""
    for c in items(f.details, "validity_checks"):
        values = mapping(c, "values")
        if get(c, "id") == "C6" and get(c, "status") in JUDGED and number(values, "attacked") > 0 \
                and number(values, "queries") > 0:
            return (f"native Square ({int(number(values, 'queries')):,} queries) on {int(number(values, 'attacked'))}"
                    f" white-box-robust points in {f.id} (C6)")
    return ""


def _art_queries(f: Finding, names: dict[str, str]) -> str:
    """ART's implementation of a score-based attack run beside ours on at least one point (a cross-check's
    ``attacks`` with an ``art`` number and ``points``)."""
    crossed = [f"{names[a]} on {int(number(row, 'points'))} points" for a, row in mapping(f.details, "attacks").items()
               if a in names and isinstance(get(row, "art"), (int, float)) and number(row, "points") > 0]
    return f"ART's {', '.join(crossed)} beside ours in {f.id}" if crossed else ""


def _deployment_queries(f: Finding, names: dict[str, str]) -> str:
    """A deployment attacked with a score-based attack: Square runs on its clean-correct points, so one with none
    made no query."""
    labels = tuple(names.values())
    rows = [r for r in items(f.details, "rows") if number(get(r, "clean"), "correct") > 0
            and any(str(k).startswith(labels) for k in mapping(r, "robust_by_attack"))]
    return f"Square against {len(rows)} deployment(s) in {f.id}" if rows else ""


def query_attack_ran(result: AuditResult, f: Finding | None, check: str) -> str:
    """A score-based (black-box, query) attack made queries: in a judged robustness grid, as the C6 probe, in the
    ART cross-check or against a deployment."""
    names = score_based_attacks()
    out = _grid(result, check, names)
    for g in (g for g in result.findings if usable(g)):
        out += [s for s in (_probe_queries(g), _art_queries(g, names), _deployment_queries(g, names)) if s]
    return "; ".join(out)


def validity_checks_ran(result: AuditResult, f: Finding | None, check: str) -> str:
    """The attack validity checks ran and were judged (C1-C16 on a variant's attacks)."""
    done = [(g.id, sum(1 for c in items(g.details, "validity_checks") if get(c, "status") in JUDGED))
            for g in result.findings if usable(g)]
    done = [(i, n) for i, n in done if n]
    return f"{sum(n for _, n in done)} validity checks judged in {', '.join(i for i, _ in done)}" if done else ""


def _attack_set(v: VariantResult) -> frozenset:
    return frozenset((p.attack, round(p.eps, 9)) for p in v.robustness if attacked(p))


def defences_compared(result: AuditResult, f: Finding | None, check: str) -> str:
    """A defended variant ([[defences]]) and another variant, both with a judged robustness finding, attacked with
    the same attacks and eps; says whether the defence was trained by this run or loaded from weights."""
    names = defence_names(result)
    compared = [v for v in judged_variants(result, check) if _attack_set(v)]
    for d in (v for v in compared if v.name in names):
        same = [o.name for o in compared if o.name != d.name and _attack_set(o) == _attack_set(d)]
        if same:
            attacks = sorted({a for a, _ in _attack_set(d)})
            return (f"defended '{d.name}' ({defence_origin(result, d.name)}) compared with "
                    f"{', '.join(repr(s) for s in same)} on the same attacks ({', '.join(attacks)}) at "
                    f"{len({e for _, e in _attack_set(d)})} eps")
    return ""


def attacks_that_ran(result: AuditResult) -> list[str]:
    """The attacks that attacked points in any variant's grid (a run's record, whatever the findings)."""
    return sorted({p.attack for v in result.variants for p in v.robustness if attacked(p)})
