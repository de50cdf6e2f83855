"""The verdict's reason, "What this means" and "Recommended actions": derived from the typed result when a report
is rendered (never stored, never free text kept elsewhere). Plain text: each template escapes for its medium.

``ACTIONS`` is the one registry of advice: (check id, status) -> a rule (finding, result) -> the actions' texts.
Its keys are the check classes' ids (never a quoted id); ``ANY`` (None) holds the rule for every check at that
status (a crash). ``GAP_ACTIONS`` maps an evidence gap's opening words to its action. Every action names what
causes it: the finding (its id and its anchor in report.html) or the evidence gaps of the banner.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attacks.presets import PRESETS
from audit.checks.art_agreement import ArtAgreement
from audit.checks.attack_validity import AttackValidity
from audit.checks.backdoor import Backdoor
from audit.checks.calibration import Calibration
from audit.checks.clean_accuracy import CleanAccuracy
from audit.checks.corruptions import Corruptions
from audit.checks.deployments import Deployments
from audit.checks.input_validation import InputValidation
from audit.checks.label_issues import LabelIssues
from audit.checks.leakage import Leakage
from audit.checks.ood import Ood
from audit.checks.robustness import Robustness
from audit.checks.training_health import TrainingHealth
from audit.core.metrics import WORST_CASE, same_eps
from audit.core.result import AuditResult, Finding, Status, Verdict

ANY = None                      # the registry key of a rule for every check
GAPS_ANCHOR = "evidence-gaps"   # the banner's list of evidence gaps
NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1", "l0": "L0"}
PERCENT_WORDS = ("accuracy", "rate", "drop", "shortfall")
LONG = 180                      # characters of a finding's summary quoted in a reason


@dataclass(frozen=True)
class Action:
    text: str
    causes: tuple[tuple[str, str], ...]   # (label, anchor) per finding that causes it, or the evidence gaps


def anchor(finding_id: str) -> str:
    """The HTML id of a finding's row: "finding-robustness-pgd_at"; a name with other characters gets a hash
    suffix, so two ids never share an anchor and no character needs escaping."""
    slug = finding_id.replace(":", "-")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", slug):
        slug = "-".join(re.findall(r"[A-Za-z0-9_]+", slug)) + "-" + hashlib.sha256(finding_id.encode()).hexdigest()[:8]
    return f"finding-{slug}"


def _cut(text: str, limit: int = LONG) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _number(key: str, value: float) -> str:
    return f"{100 * value:.3g}%" if any(w in key for w in PERCENT_WORDS) and 0 <= value <= 1 else f"{value:.3g}"


def _broken_rule(f: Finding) -> tuple[str, float, str, float] | None:
    """(metric, value, "below" | "above", bound) of the fail rule of its threshold the finding's value breaks."""
    key, _, rules = (f.threshold or "").partition(": ")
    value = f.metrics.get(key)
    if value is None:
        return None
    for rule in rules.split(", "):
        m = re.fullmatch(r"fail (below|above) (-?[0-9]+(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?)", rule)  # else hand-edited
        if m is None:
            continue
        word, bound = m.group(1), float(m.group(2))
        if (word == "below" and value < bound) or (word == "above" and value > bound):
            return key, value, word, bound
    return None


def failure(f: Finding, result: AuditResult) -> str:
    """One failed finding in words: "worst case robust accuracy 51.8% at Linf eps 0.1 is below the policy's
    70.0% floor (finding robustness:x, gating)"; without a threshold it broke: its title and summary."""
    tag = f"(finding {f.id}{', gating' if f.gating else ''})"
    broken = _broken_rule(f)
    if broken is None:
        return f"{f.title} failed: {_cut(f.summary)} {tag}"
    key, value, word, bound = broken
    name, _, eps = key.partition("@")
    norm = result.threat_model.norm if result.threat_model else str(result.config.get("attacks", {}).get("norm", ""))
    where = f" at {NORMS.get(norm.lower(), norm)} eps {eps}" if eps else ""
    limit = "floor" if word == "below" else "limit"
    words = name.replace("worst_case_", "worst-case ").replace("_", " ")
    return f"{words} {_number(name, value)}{where} is {word} the policy's {_number(name, bound)} {limit} {tag}"


def reason_lead(result: AuditResult) -> str:
    """The banner's second line: the verdict's reason in one sentence (INCOMPLETE: its lead-in, the gaps follow)."""
    gating = [f for f in result.findings if f.gating]
    if result.verdict is Verdict.ERROR:
        crashed = [f for f in gating if f.status is Status.ERROR]
        more = f"; also crashed: {', '.join(f.id for f in crashed[1:])}" if crashed[1:] else ""
        return (f"the gating check {crashed[0].title} crashed: {_cut(crashed[0].summary)} (finding {crashed[0].id})"
                f"{more}" if crashed else "a gating check crashed")
    if result.verdict is Verdict.NO_GO:
        failed = [f for f in gating if f.status is Status.FAIL]
        more = f"; also failed: {', '.join(f.id for f in failed[1:])}" if failed[1:] else ""
        return failure(failed[0], result) + more if failed else "a gating finding failed"
    if result.verdict is Verdict.INCOMPLETE:
        n = len(result.evidence_gaps)
        return (f"nothing gating failed, but the run lacks {n} piece{'s' if n != 1 else ''} of the evidence policy "
                f"\u201c{result.policy.name}\u201d requires for a GO")
    judged = [f for f in gating if f.status in (Status.PASS, Status.WARN)]
    warned = [f.id for f in judged if f.status is Status.WARN]
    tail = f"; {len(warned)} with a warning ({', '.join(warned)})" if warned else ""
    return (f"all {len(judged)} judged gating findings met the thresholds that policy \u201c{result.policy.name}\u201d "
            f"declared{tail}")


def reason(result: AuditResult) -> str:
    """The reason as one sentence with everything in it (the gaps of an INCOMPLETE run listed after a colon)."""
    return reason_lead(result) + (": " + "; ".join(result.evidence_gaps) if result.verdict is Verdict.INCOMPLETE
                                  else "")


# --- What this means --------------------------------------------------------------------------------------------

def _robust_at(result: AuditResult, name: str) -> tuple[float, float | None, float | None] | None:
    """(eps, worst-case robust accuracy there, clean accuracy) of a variant at the eps its robustness finding gated
    (else the declared threat's, else the middle of its grid); None when nothing was attacked."""
    v = next((v for v in result.variants if v.name == name), None)
    worst = sorted((p for p in (v.robustness if v else ()) if p.attack == WORST_CASE), key=lambda p: p.eps)
    if not worst:
        return None
    f = next((f for f in result.findings if f.check == Robustness.id and f.variant == name and f.details), None)
    tm = result.threat_model
    eps = f.details.gated_eps if f else tm.eps if tm and tm.declared and tm.eps else worst[len(worst) // 2].eps
    at = next((p.robust_accuracy for p in worst if same_eps(p.eps, eps)), None)
    return eps, at, v.clean_accuracy.value if v and v.clean_accuracy else None


def _threat_words(result: AuditResult, eps: float) -> str:
    tm = result.threat_model
    norm = NORMS.get((tm.norm if tm else "linf").lower(), "linf")
    kind = tm.knowledge.split(":")[0] if tm else "white-box"
    if tm is not None and tm.declared:
        return (f"Against the declared threat ({tm.name}: a {kind} attacker who may change each input by up to "
                f"{eps:g} in the {norm} norm)")
    return (f"No threat model was declared, so these numbers answer a generic {kind} attack of size {eps:g} "
            f"({norm}), not necessarily the attacker this model will face; at that size")


VERDICT_MEANING = {
    Verdict.GO: "This meets every threshold the policy declared before the run; it is decision support, and a "
                "person still decides whether to deploy.",
    Verdict.NO_GO: "This is short of what the policy requires: the model should not be deployed against this "
                   "threat as it is.",
    Verdict.INCOMPLETE: "Nothing measured failed, but the run lacks evidence the policy requires, so it cannot "
                        "support a deployment decision yet.",
    Verdict.ERROR: "A check the verdict depends on crashed, so the model could not be judged; fix the crash and "
                   "rerun.",
}


def meaning(result: AuditResult) -> list[str]:
    """2-4 plain sentences for a non-specialist: what the numbers mean for the deployment, under which threat."""
    out = []
    at = _robust_at(result, result.candidate)
    robust = at[1] if at is not None else None
    if at is not None and robust is not None:
        without = f" ({at[2]:.0%} without an attack)" if at[2] is not None else ""
        out.append(f"{_threat_words(result, at[0])}, the model \u201c{result.candidate}\u201d still classifies "
                   f"{robust:.0%} of the test inputs correctly{without}: an attacker could make it misclassify "
                   f"about {1 - robust:.0%} of the inputs they tamper with.")
    out.append(VERDICT_MEANING[result.verdict])
    defences = {d.get("name") for d in result.config.get("defences") or () if isinstance(d, dict)}
    reference = next((v.name for v in result.variants if v.name not in defences and not v.candidate), None)
    ref = _robust_at(result, reference) if reference and result.candidate in defences else None
    if at is not None and at[1] is not None and ref is not None and ref[1] is not None:
        clean_too = f"; clean accuracy went from {ref[2]:.0%} to {at[2]:.0%}" if None not in (at[2], ref[2]) else ""
        out.append(f"At eps {at[0]:g} the defence took robust accuracy from {ref[1]:.0%} (\u201c{reference}\u201d, "
                   f"undefended) to {at[1]:.0%}{clean_too}.")
    data = [f.title.split(" (")[0] for f in result.findings if f.variant is None and f.gating and f.status in BAD]
    out.append(f"The data checks raised {len(data)} concern{'s' if len(data) != 1 else ''} ({'; '.join(data)}): see "
               "the actions below." if data else "The data checks found nothing above their warning thresholds.")
    return out[:4]


# --- Recommended actions ----------------------------------------------------------------------------------------

Rule = Callable[[Finding, AuditResult], tuple[str, ...]]
ACTIONS: dict[tuple[str | None, Status], Rule] = {}
BAD = (Status.FAIL, Status.WARN)


def rule(checks: tuple[Any, ...], statuses: tuple[Status, ...]) -> Callable[[Rule], Rule]:
    """Register ``fn`` for every (check, status) pair: a check class (its id is the key) or ``ANY``."""
    def add(fn: Rule) -> Rule:
        for c in checks:
            for s in statuses:
                ACTIONS[(c.id if c is not None else ANY, s)] = fn
        return fn
    return add


def _stronger_preset(result: AuditResult) -> str:
    names = list(PRESETS)
    now = str(result.config.get("attacks", {}).get("preset", names[0]))
    return names[min(names.index(now) + 1, len(names) - 1)] if now in names else names[-1]


def _preset_action(result: AuditResult, why: str) -> str:
    return (f"Rerun with a stronger attack preset ([attacks] preset = \"{_stronger_preset(result)}\"): {why}, so the "
            "reported robustness may be too optimistic.")


@rule((Robustness,), BAD)
def _robustness(f: Finding, result: AuditResult) -> tuple[str, ...]:
    eps = f"{f.details.gated_eps:g}" if f.details is not None else "the threat's eps"
    if result.config.get("defences"):
        text = ("Strengthen the defence: train longer or with more attack steps, try TRADES (method = \"trades\") "
                "or a larger model in the [[defences]] table, then rerun.")
    else:
        text = (f"Train an adversarially trained variant (PGD-AT, or TRADES for a better clean/robust balance): add a "
                f"[[defences]] table with method = \"pgd\" (or \"trades\") and eps = {eps} to the config and rerun "
                f"to compare it with this model.")
    band = "Robust accuracy is in the policy's warning band. " if f.status is Status.WARN else ""
    unreliable = (_preset_action(result, "the attack evidence contradicts itself"),) \
        if f.details is not None and f.details.unreliable else ()
    return (band + text, *unreliable)


@rule((AttackValidity,), BAD)
def _validity(f: Finding, result: AuditResult) -> tuple[str, ...]:
    ids = [g.id for g in (f.details.validity_checks if f.details is not None else ()) if g.status in BAD]
    return (_preset_action(result, f"validity check{'s' if len(ids) != 1 else ''} {', '.join(ids) or 'C1-C16'} "
                           "flagged the attacks as possibly too weak"),)


@rule((ArtAgreement,), BAD)
def _art(f: Finding, result: AuditResult) -> tuple[str, ...]:
    return (_preset_action(result, "the reference implementation (ART) broke points this run's attacks missed"),)


def _same(text: str) -> Rule:   # the same sentence for every such finding
    return lambda f, result: (text,)


for _check, _text in (
        (LabelIssues, "Review the flagged training labels in triage.csv (rows with label_issue = True, most suspect "
                      "first), fix or drop the wrong ones and rerun (label_issues.retrain_cleaned = true measures "
                      "the effect)."),
        (Leakage, "Remove the test rows that duplicate training rows (triage.csv, leak_distance) so the test measures "
                  "unseen data, and rerun."),
        (Calibration, "Recalibrate the model's confidence with temperature scaling fitted on held-out data before "
                      "anyone relies on its confidence scores."),
        (Backdoor, "Review the training data's provenance: trace the rows the backdoor screen flagged (triage.csv, "
                   "backdoor columns) to their source and look for planted triggers or poisoned labels."),
        (Deployments, "Recalibrate the quantisation (calibration data representative of the inputs, per-channel "
                      "scales) or ship a higher-precision form: the deployed model loses robustness."),
        (CleanAccuracy, "Improve clean accuracy first (more data or epochs, a better model): inputs it already gets "
                        "wrong without an attack count as failures under attack too."),
        (Corruptions, "Train with corruption augmentation (noise, blur, contrast changes) so accuracy holds on "
                      "degraded inputs."),
        (Ood, "Add an out-of-distribution guard (reject inputs with low confidence) before deployment: the model "
              "does not tell unfamiliar inputs from familiar ones."),
        (TrainingHealth, "Fix the training run (the finding names what went wrong) and retrain, then audit again."),
        (InputValidation, "Fix the input problems input validation found before trusting any other number."),
):
    rule((_check,), BAD)(_same(_text))


@rule((ANY,), (Status.ERROR,))
def _crashed(f: Finding, result: AuditResult) -> tuple[str, ...]:
    return (f"Fix what made {f.title} crash and rerun: the verdict cannot be judged without it.",)


GAP_ACTIONS = (  # an evidence gap's opening words -> its action
    ("required checks not enabled", "Run the missing checks: enable the checks the policy requires (the gap names "
                                    "them) and rerun."),
    ("required check ", "Make the skipped required check run on this model and data (the gap says why it was "
                        "skipped), or choose a policy that does not require it."),
    ("required checks unknown", "Upgrade advaudit: the policy requires checks this version does not know."),
    ("attacks:", "Run at least the attacks the policy's minimum preset asks for ([attacks] preset) and rerun."),
    ("test points:", "Audit more test points: a larger test split, or [data] max_test up to the policy's minimum."),
)


def actions(result: AuditResult) -> list[Action]:
    """The recommended actions, the most severe cause first; one action caused by several findings names all."""
    order = {Status.ERROR: 0, Status.FAIL: 1, Status.WARN: 2}
    found: dict[str, list[tuple[str, str]]] = {}
    for f in sorted((f for f in result.findings if f.gating and f.status in order), key=lambda f: order[f.status]):
        fn = ACTIONS.get((f.check, f.status)) or ACTIONS.get((ANY, f.status))
        for text in fn(f, result) if fn is not None else ():
            found.setdefault(text, []).append((f.id, anchor(f.id)))
    for gap in result.evidence_gaps:
        text = next((t for start, t in GAP_ACTIONS if gap.startswith(start)), "Provide the missing evidence and rerun.")
        if ("evidence gaps", GAPS_ANCHOR) not in found.setdefault(text, []):
            found[text].append(("evidence gaps", GAPS_ANCHOR))
    return [Action(text, tuple(causes)) for text, causes in found.items()]
