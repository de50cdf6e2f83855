"""Compare two audit results on the same test data: per-metric deltas with a paired McNemar test.

Both results store per-test-point correctness (clean, and robust per attack and eps) for every variant, so the
head's candidate can be tested against the base's candidate point by point: McNemar's exact test on the
discordant pairs (b = correct in base only, c = correct in head only; two-sided binomial with p = 1/2) says
whether the change is more than chance. Runs on different test data are refused (by the number of test points
and the splits' SHA-256), and so are runs with fewer than ``MIN_PAIRED_POINTS`` test points. Both files are read
by the one hardened reader (``audit.engine.results_io.read_results``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.checks import CHECKS
from audit.checks.clean_accuracy import CleanAccuracy
from audit.config.policy import CompareRule
from audit.core.errors import UsageError
from audit.core.metrics import WORST_CASE, unpack_bits
from audit.core.result import AuditResult, Status
from audit.core.stats import mcnemar_exact
from audit.engine.results_io import read_results

# (check, metric, better): the unpaired metrics compare diffs, each declared by its check (``compared``)
OTHER = tuple((c.id, metric, better) for c in CHECKS.values() for metric, better in c.compared)
CLEAN = CleanAccuracy.id  # the clean per-point series is named after the check that measures clean accuracy
MIN_PAIRED_POINTS = 20   # below this a paired exact test cannot tell a change from chance: refused, not reported


@dataclass(frozen=True)
class Delta:
    """One metric of the candidate, base vs head. ``status``: "regression", "improvement" or "no significant change"."""

    metric: str
    attack: str | None
    eps: float | None
    base: float
    head: float
    delta: float
    base_only: int   # b: correct in base, wrong in head
    head_only: int   # c: wrong in base, correct in head
    p_value: float
    status: str


@dataclass(frozen=True)
class EvidenceChange:
    """What differs between the evidence of base and head. ``kind``: one of ``EVIDENCE_CHANGES``; ``what``: the
    change in words; ``allowed``: the policy's ``[compare] allow_changes`` lists its kind (else a regression)."""

    kind: str
    what: str
    allowed: bool


@dataclass(frozen=True)
class Comparison:
    base: dict
    head: dict
    rule: CompareRule
    n: int
    deltas: tuple[Delta, ...]
    gate_flips: tuple[str, ...]   # gating findings that passed in base and fail in head
    regression: bool
    other: tuple[dict, ...] = ()  # unpaired metrics (calibration, corruptions, OOD): base, head, change
    changes: tuple[EvidenceChange, ...] = ()  # what differs in the evidence itself (listed above the metrics)

    @property
    def exit_code(self) -> int:
        return 1 if self.regression else 0


def load_result(path: Path) -> AuditResult:
    """A results.json, or an output directory holding one (through the hardened reader, checked against the
    shipped schema)."""
    return read_results(Path(path))


def check_pairable(base: AuditResult, head: AuditResult) -> int:
    """The number of paired test points; UsageError when base and head are not the same test points or too few."""
    nb, nh = int(base.dataset.n_test), int(head.dataset.n_test)
    if nb != nh:
        raise UsageError(f"base and head were audited on different data (different test sets: base has {nb} test "
                         f"points, head has {nh}); a paired comparison needs the same test points")
    if base.dataset.sha256 != head.dataset.sha256:
        raise UsageError("base and head were audited on different data (split SHA-256 differ); a paired "
                         "comparison needs the same test points")
    if nb < MIN_PAIRED_POINTS:
        raise UsageError(f"too few test points for a paired test: {nb} (a comparison needs at least "
                         f"{MIN_PAIRED_POINTS})")
    return nb


def _series(result: AuditResult) -> dict:
    """(metric, attack, eps) -> per-point correctness of the candidate variant."""
    v = result.variant(result.candidate)
    n = result.dataset.n_test
    out: dict[tuple[str, str | None, float | None], np.ndarray] = {}
    if v.correct_bits:
        out[(CLEAN, None, None)] = unpack_bits(v.correct_bits, n)
    for p in v.robustness:
        if p.correct_bits:
            out[("robust_accuracy", p.attack, p.eps)] = unpack_bits(p.correct_bits, n)
    return out


SPEED_ONLY = ("batch_size", "early_stop")  # attack settings that change the cost, never a result


def _measured_gating(result: AuditResult) -> dict[str, str]:
    """check -> "measured", or "skipped"/"error" when any of its gating findings was, for ``result``."""
    out: dict[str, str] = {}
    for f in result.findings:
        if f.gating and out.get(f.check, "measured") == "measured":
            out[f.check] = f.status.value if f.status in (Status.SKIPPED, Status.ERROR) else "measured"
    return out


def _attack_settings(result: AuditResult) -> dict:
    return {k: v for k, v in result.config.get("attacks", {}).items() if k not in SPEED_ONLY}


def evidence_changes(base: AuditResult, head: AuditResult, rule: CompareRule) -> tuple[EvidenceChange, ...]:
    """What the head's evidence lacks or does differently from the base's, each named: a gating check dropped or
    newly skipped, another policy, attack settings, threat model, candidate or seed."""
    found: list[tuple[str, str]] = []
    gb, gh = _measured_gating(base), _measured_gating(head)
    for check in sorted(gb):
        if gb[check] == "measured" and check not in gh:
            found.append(("checks", f"gating check {check} was dropped"))
        elif gb[check] == "measured" and gh[check] != "measured":
            found.append(("checks", f"gating check {check} is now {gh[check]}"))
    if base.policy.sha256 != head.policy.sha256:
        found.append(("policy", f"policy {base.policy.name} ({base.policy.sha256[:12]}) -> {head.policy.name} "
                                f"({head.policy.sha256[:12]})"))
    ab, ah = _attack_settings(base), _attack_settings(head)
    for key in sorted(set(ab) | set(ah)):
        if ab.get(key) != ah.get(key):
            found.append(("attacks", f"attacks.{key}: {ab.get(key)!r} -> {ah.get(key)!r}"))
    if base.threat_model != head.threat_model:
        found.append(("threat_model", "the threat model differs"))
    if base.candidate != head.candidate:
        found.append(("candidate", f"candidate {base.candidate} -> {head.candidate}"))
    sb, sh = base.config.get("seed"), head.config.get("seed")
    if sb != sh:
        found.append(("seed", f"seed {sb} -> {sh} (training and random starts differ)"))
    return tuple(EvidenceChange(kind, what, kind in rule.allow_changes) for kind, what in found)


def _judge(b: np.ndarray, h: np.ndarray, rule: CompareRule) -> tuple[int, int, float, str]:
    base_only, head_only = int((b & ~h).sum()), int((~b & h).sum())
    p = mcnemar_exact(base_only, head_only)
    drop = (base_only - head_only) / len(b)
    if p < rule.alpha and drop > rule.max_drop:
        return base_only, head_only, p, "regression"
    if p < rule.alpha and drop < 0:
        return base_only, head_only, p, "improvement"
    return base_only, head_only, p, "no significant change"


def compare(base: AuditResult, head: AuditResult, rule: CompareRule) -> Comparison:
    n = check_pairable(base, head)
    sb, sh = _series(base), _series(head)
    deltas = []
    for key in sorted(set(sb) & set(sh), key=lambda k: (k[0] != CLEAN, k[2] or 0, k[1] != WORST_CASE,
                                                      k[1] or "")):
        b, h = sb[key], sh[key]
        bo, ho, p, status = _judge(b, h, rule)
        deltas.append(Delta(metric=key[0], attack=key[1], eps=key[2], base=float(b.mean()), head=float(h.mean()),
                            delta=float(h.mean() - b.mean()), base_only=bo, head_only=ho, p_value=p, status=status))
    passed = {f.check for f in base.findings if f.gating and f.status in (Status.PASS, Status.WARN)}
    flips = tuple(sorted(f.check for f in head.findings if f.gating and f.status is Status.FAIL
                         and f.check in passed))
    if not deltas:
        raise UsageError("compare: the two results share no per-point series (clean accuracy or an attack at an "
                         "eps, with per-point bits): nothing could be compared")
    changes = evidence_changes(base, head, rule)
    regression = any(d.status == "regression" for d in deltas) or (rule.gate_flips_regress and bool(flips)) or \
        any(not c.allowed for c in changes)
    other = []
    for check, metric, better in OTHER:
        fb = next((f for f in base.findings if f.check == check and f.variant == base.candidate), None)
        fh = next((f for f in head.findings if f.check == check and f.variant == head.candidate), None)
        if fb and fh and metric in fb.metrics and metric in fh.metrics:
            b, h = fb.metrics[metric], fh.metrics[metric]
            other.append({"check": check, "metric": metric, "base": b, "head": h, "delta": h - b,
                          "better": better})
    describe = lambda r: {"candidate": r.candidate, "verdict": r.verdict.value, "created": r.created,  # noqa: E731
                          "tool": r.tool.get("version", ""), "policy_sha256": r.policy.sha256}
    return Comparison(base=describe(base), head=describe(head), rule=rule, n=n,
                      deltas=tuple(deltas), gate_flips=flips, regression=regression, other=tuple(other),
                      changes=changes)
