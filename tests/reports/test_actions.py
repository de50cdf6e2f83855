"""The verdict's reason, "What this means" and "Recommended actions" (reports/actions.py) on tiny results built
here: each reason names what decided the verdict, each action comes from a finding or an evidence gap and links to
its anchor in report.html, and every hostile name is inert in HTML, Markdown and the notebook view."""
from __future__ import annotations

import dataclasses
import re

from markdown_it import MarkdownIt

from audit.api.report import Audit
from audit.checks import CHECKS
from audit.core.metrics import Accuracy, RobustnessPoint
from audit.core.result import (
    AuditResult,
    DatasetInfo,
    Finding,
    ModelInfo,
    PolicyInfo,
    SplitHashes,
    Status,
    ThreatModelInfo,
    VariantResult,
    Verdict,
)
from audit.core.text import md_inline
from reports.actions import ACTIONS, GAPS_ANCHOR, actions, anchor, meaning, reason
from reports.html import render_html, render_notebook
from reports.markdown import render_markdown
from reports.view import verdict_line

SHA = "ab" * 32
ROBUST = "worst_case_robust_accuracy@0.1"


def finding(check: str, status: Status = Status.PASS, variant: str | None = None, *, metrics=None,
            threshold: str | None = None, summary: str = "measured", gating: bool = True) -> Finding:
    return Finding(id=f"{check}:{variant}" if variant else check, check=check, title=CHECKS[check].title,
                   variant=variant, status=status, summary=summary, metrics=dict(metrics or {}), details=None,
                   controls=CHECKS[check].controls, gating=gating, threshold=threshold)


def variant(name: str, robust: float = 0.527, *, candidate: bool = True, trained: bool = False) -> VariantResult:
    points = tuple(RobustnessPoint(a, "linf", e, robust + 0.1 * (e < 0.1), robust - 0.05, robust + 0.05, 450, 10, "")
                   for e in (0.05, 0.1) for a in ("pgd", "worst_case"))
    return VariantResult(name, "the model as supplied (model.py)" if not trained else "PGD adversarial training",
                         candidate, Accuracy(0.98, 0.96, 0.99, 450, 441), points,
                         train_seconds=12.5 if trained else None, train_epochs=3 if trained else None,
                         train_example_passes=1000 if trained else None)


def tiny(verdict: Verdict = Verdict.NO_GO, findings: tuple[Finding, ...] | None = None, *, candidate: str = "baseline",
         variants: tuple[VariantResult, ...] | None = None, gaps: tuple[str, ...] = (), defences=(),
         policy: str = "p", threat: str = "digits-linf-0.1") -> AuditResult:
    """A NO-GO of a supplied model without defences: its robustness fails the policy's 70% floor at eps 0.1."""
    if findings is None:
        findings = (finding("clean_accuracy", variant=candidate, metrics={"clean_accuracy": 0.98},
                            threshold="clean_accuracy: fail below 0.9"),
                    finding("robustness", Status.FAIL, candidate, metrics={ROBUST: 0.527},
                            threshold=f"{ROBUST}: fail below 0.7, warn below 0.8"))
    return AuditResult(
        schema_version="2.1", tool={"version": "0"}, created="2026-01-01", verdict=verdict, candidate=candidate,
        dataset=DatasetInfo("digits", "image", 1000, 450, 10, (1, 8, 8), (0.0, 1.0), (), SplitHashes(SHA, SHA)),
        model=ModelInfo("model:build", {}, "model.py", SHA, 100, "SmallCNN"),
        policy=PolicyInfo(policy, "1", SHA, "policy.toml", {}),
        config={"seed": 0, "attacks": {"attacks": ["pgd"], "preset": "quick", "norm": "linf"},
                "defences": list(defences)},
        environment={"torch": "2"}, variants=variants or (variant(candidate),), findings=findings, nist=(),
        threat_model=ThreatModelInfo(True, threat, "linf", 0.1, "white-box: weights known", "untargeted",
                                     "eps-ball", "true labels", "NIST AI 100-2"),
        frameworks={"mitre_atlas": "MITRE ATLAS v5 (2025)"}, evidence_gaps=gaps)


def ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


def test_a_no_go_reason_names_the_metric_the_floor_and_the_finding():
    r = tiny()
    text = reason(r)
    assert text == ("worst-case robust accuracy 52.7% at Linf eps 0.1 is below the policy's 70% floor "
                    "(finding robustness:baseline, gating)")
    assert verdict_line(r) == f"verdict: NO-GO for candidate 'baseline': {text}"
    html, md = render_html(r), render_markdown(r)
    assert "Worst-case robust accuracy 52.7% at Linf eps 0.1 is below the policy&#39;s 70% floor" in html
    assert f"**Why:** {md_inline('W' + text[1:], 1000)}." in md


def test_an_incomplete_reason_lists_every_gap_and_an_error_names_the_crash():
    gaps = ("attacks: preset 'quick' is weaker than 'standard': apgd_ce missing",
            "test points: 450 audited, fewer than the 500 the policy requires")
    passing = (finding("robustness", Status.PASS, "baseline", metrics={ROBUST: 0.9},
                       threshold=f"{ROBUST}: fail below 0.7"),)
    r = tiny(Verdict.INCOMPLETE, passing, gaps=gaps)
    assert all(g in reason(r) for g in gaps) and reason(r).startswith("nothing gating failed")
    assert verdict_line(r).startswith("verdict: INCOMPLETE for candidate 'baseline'; missing: attacks: ")
    html = render_html(r)
    assert all(f"<li>{g}</li>".replace("'", "&#39;") in html for g in gaps) and GAPS_ANCHOR in ids(html)
    crashed = (finding("robustness", Status.ERROR, "baseline", summary="check failed: CUDA out of memory"),)
    text = reason(tiny(Verdict.ERROR, crashed))
    assert CHECKS["robustness"].title in text and "CUDA out of memory" in text and "robustness:baseline" in text


def test_each_action_comes_from_its_finding_and_links_to_its_row():
    findings = tiny().findings + (
        finding("label_issues", Status.WARN, metrics={"label_issue_rate": 0.03}),
        finding("calibration", Status.WARN, "baseline"), finding("backdoor", Status.WARN),
        finding("attack_validity", Status.FAIL, "baseline"), finding("deployments", Status.FAIL),
        finding("calibration", Status.FAIL, "other", gating=False))  # not gating: no action
    r = tiny(findings=findings, gaps=("test points: 450 audited, fewer than the 500 the policy requires",))
    got = {causes[0][0]: text for a in actions(r) for causes, text in [(a.causes, a.text)]}
    assert "[[defences]]" in got["robustness:baseline"] and "TRADES" in got["robustness:baseline"]
    assert "triage.csv" in got["label_issues"] and "temperature scaling" in got["calibration:baseline"]
    assert "provenance" in got["backdoor"] and 'preset = "standard"' in got["attack_validity:baseline"]
    assert "quantisation" in got["deployments"] and "test points" in got["evidence gaps"]
    assert "calibration:other" not in str(actions(r))
    html, md = render_html(r), render_markdown(r)
    links = re.findall(r'<a href="#([^"]+)">', html.split('id="actions"')[1].split("</ol>")[0])
    assert len(links) == len(actions(r)) and set(links) <= ids(html) and anchor("robustness:baseline") in links
    assert all(md_inline(f"finding {f}") in md for f in got if f != "evidence gaps")
    assert {k[0] for k in ACTIONS} <= set(CHECKS) | {None}   # keyed by registered checks only


def test_without_warnings_there_is_no_action_and_the_meaning_has_the_threat():
    r = tiny(Verdict.GO, (finding("robustness", Status.PASS, "baseline", metrics={ROBUST: 0.9},
                                  threshold=f"{ROBUST}: fail below 0.7"),))
    assert actions(r) == [] and "None: no gating finding" in render_html(r)
    said = " ".join(meaning(r))
    assert 2 <= len(meaning(r)) <= 4 and "digits-linf-0.1" in said and "Linf" in said and "a person" in said


EVIL = '<script>alert(1)</script>[x](javascript:1)'


def test_hostile_names_are_inert_in_the_reason_the_actions_and_every_view(tmp_path):
    r = tiny(candidate=EVIL, policy=EVIL, threat=EVIL)
    r = dataclasses.replace(r, findings=r.findings + (finding("label_issues", Status.WARN),),
                            evidence_gaps=(f"required check robustness ({EVIL}) was skipped: {EVIL}",))
    assert EVIL in reason(r) or EVIL in " ".join(meaning(r))   # plain text: each medium escapes it
    (tmp_path / "report.html").write_text("x", encoding="utf-8")
    html, notebook = render_html(r), render_notebook(r, tmp_path)
    for page in (html, notebook):
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in Audit(r)._repr_html_() and 'href="' in notebook and "report.html</a>" in notebook
    md = render_markdown(r)
    tokens = [t for b in MarkdownIt("commonmark").parse(md) for t in (b.children or ())]
    assert not [t for t in tokens if t.type in ("html_inline", "link_open", "image")]
    assert anchor(f"robustness:{EVIL}") in ids(html) and re.fullmatch(r"[\w.-]+", anchor(f"robustness:{EVIL}"))


def test_a_threshold_that_is_not_a_number_gives_a_reason_without_it_not_a_crash():
    """A hand-edited results.json (``advaudit render``): the threshold's bound is not a number."""
    bad = (finding("robustness", Status.FAIL, "baseline", metrics={ROBUST: 0.527},
                   threshold=f"{ROBUST}: fail below abc, warn below 1.2.3"),)
    r = tiny(findings=bad)
    assert "robustness:baseline" in reason(r)
    assert "abc" not in reason(r) and render_html(r) and render_markdown(r) and verdict_line(r)
