"""What a run lacks of the evidence its policy asks for (``[evidence]``, ``EvidenceRule``): its evidence gaps.

A gap is one sentence naming what is missing: a required check that was not enabled, or that was enabled but
skipped for the candidate (or the data); attacks weaker than the policy's minimum preset; fewer audited test points
than its minimum. A run with a gap and no failure is INCOMPLETE, never GO (``judge.verdict``). ``evidence_gaps``
is pure (the rule, the config, the findings, the checks that apply, the counts); ``run_gaps`` reads those off a
finished run's context. ``check_rule`` refuses, before any work, a required check the registry does not know.

The attack comparison: every attack of the minimum preset must be in the run's ``attacks`` (unless it cannot run on
this data and model: too few classes, no images) with at least the preset's value of each integer setting it takes
(steps, restarts, queries, target classes). Speed-only settings (``early_stop``) and the Square schedule
(``p_init``) are not strength. Running an attack of the preset's chain standalone instead is at least as strong:
the worst case per example is taken over every attack either way.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

from attacks import ATTACKS
from attacks.presets import PRESETS
from attacks.spec import config_keys
from audit.checks import CHECKS
from audit.checks.base import VariantCheck
from audit.config import AuditConfig
from audit.config.attacks import AttackConfig
from audit.config.policy import APPLICABLE, EvidenceRule, load_policy
from audit.core.errors import UsageError
from audit.core.result import Finding, Status
from audit.engine.plan import enabled_checks
from audit.methods.evaluation import skipped_attacks

SETTING_WORDS = {"n_targets": "target classes"}  # how a setting reads in a gap ("9 target classes")


def check_rule(rule: EvidenceRule, registry: Mapping = CHECKS, path: str = "policy.evidence") -> None:
    """UsageError naming the first required check id the registry does not know, and the valid ones."""
    for c in rule.required_checks:
        if c != APPLICABLE and c not in registry:
            raise UsageError(f"{path}.required_checks: {c!r} is not a known check; valid: {APPLICABLE!r} (every "
                             f"applicable check on by default) or {', '.join(registry)}")


def check_policy(spec: str) -> None:
    """The policy ``spec`` (a shipped name or a path) loads and its ``[evidence]`` names known checks only."""
    check_rule(load_policy(spec).evidence)


def required_checks(rule: EvidenceRule, applies: Collection[str], registry: Mapping = CHECKS) -> tuple[str, ...]:
    """The check ids the rule requires of this run: "applicable" as every check on by default in ``applies``,
    named ids as given (required even where they do not apply), each once, in the rule's order."""
    out: list[str] = []
    for c in rule.required_checks:
        out += [k for k, check in registry.items() if check.by_default and k in applies] if c == APPLICABLE else [c]
    return tuple(dict.fromkeys(out))


def _configured(attacks: AttackConfig) -> str:
    """'preset 'quick'', or 'preset 'standard' as configured' when ``[attacks]`` overrides a setting of it."""
    base = AttackConfig(preset=attacks.preset)
    changed = any(getattr(attacks, k) != getattr(base, k) for k in PRESETS.get(attacks.preset, {}))
    return f"preset {attacks.preset!r}" + (" as configured" if changed else "")


def attack_shortfall(attacks: AttackConfig, minimum: str, cannot_run: Collection[str] = ()) -> str:
    """"" when ``attacks`` match or exceed preset ``minimum`` (or there is none), else one sentence naming what is
    weaker: "attacks: preset 'quick' is weaker than 'standard': apgd_ce, apgd_t, fab_t, square missing".
    ``cannot_run``: attacks this data and model rule out, never required."""
    if not minimum:
        return ""
    floor = AttackConfig(preset=minimum)
    have = set(attacks.attacks or ())
    wanted = [a for a in floor.attacks or () if a not in cannot_run]
    parts = [f"{', '.join(a for a in wanted if a not in have)} missing"] if set(wanted) - have else []
    for a in (a for a in wanted if a in have):
        mine, need = attacks.params(a), floor.params(a)
        for name, key in config_keys(ATTACKS[a].params).items():
            n = need[name]
            if isinstance(n, int) and not isinstance(n, bool) and mine[name] < n:
                parts.append(f"{a} {mine[name]} {SETTING_WORDS.get(name, name)} < {n} (attacks.{key})")
    if not parts:
        return ""
    return f"attacks: {_configured(attacks)} is weaker than {minimum!r}: {'; '.join(parts)}"


def evidence_gaps(rule: EvidenceRule, config: AuditConfig, findings: tuple[Finding, ...], applies: Collection[str],
                  n_test: int, cannot_run: Collection[str] = ()) -> tuple[str, ...]:
    """What the run lacks of ``rule``, one sentence each (empty: the evidence is complete). ``applies``: the ids
    of the checks that apply to this data and model (``not_applicable`` empty); ``n_test``: the audited test
    points; ``cannot_run``: the attacks that cannot run on them."""
    gaps = []
    required = required_checks(rule, applies)
    enabled = enabled_checks(config)
    unknown = [c for c in required if c not in CHECKS]
    if unknown:
        gaps.append(f"required checks unknown to this advaudit: {', '.join(unknown)}")
    off = [c for c in required if c in CHECKS and c not in enabled]
    if off:
        gaps.append(f"required checks not enabled: {', '.join(off)}")
    for f in findings:
        if f.gating and f.status is Status.SKIPPED and f.check in required:
            why = f.summary.removeprefix("skipped: ")
            gaps.append(f"required check {f.check}{f' ({f.variant})' if f.variant else ''} was skipped: {why}")
    short = attack_shortfall(config.attacks, rule.min_attacks, cannot_run)
    if short:
        gaps.append(short)
    if n_test < rule.min_test_points:
        gaps.append(f"test points: {n_test} audited, fewer than the {rule.min_test_points} the policy requires")
    return tuple(gaps)


def run_gaps(ctx, findings: tuple[Finding, ...]) -> tuple[str, ...]:
    """The evidence gaps of a finished run (``ctx``: its Context): which checks apply is each check's
    ``not_applicable`` on it, which attacks cannot run is the evaluation's own rule."""
    data, config = ctx.data, ctx.config
    applies = {c for c, check in CHECKS.items() if not check.not_applicable(ctx)}
    cannot = skipped_attacks(AttackConfig(attacks=tuple(ATTACKS)), data.num_classes, tuple(data.input_shape))
    missing = tuple(f for f in findings if f.check not in CHECKS or not _does_not_apply(CHECKS[f.check], ctx, f))
    return evidence_gaps(ctx.policy.evidence, config, missing, applies, int(data.x_test.shape[0]), cannot)


def _does_not_apply(check, ctx, f: Finding) -> bool:
    """A skipped finding whose check does not apply to this data, model or variant: no evidence is missing."""
    if f.status is not Status.SKIPPED:
        return False
    if check.not_applicable(ctx):
        return True
    return isinstance(check, VariantCheck) and f.variant is not None and bool(check.not_applicable_to(ctx, f.variant))
