"""The policy declares the evidence a GO needs (issue 27): a run that leaves a required check out, attacks weaker
than the policy's minimum preset, or audits fewer test points than its minimum is INCOMPLETE (exit 4), never GO;
a failure is still NO-GO, with the gaps listed too. The shipped screening policy asks for nothing beyond what ran,
and says so: "screening, not a sign-off"."""
from __future__ import annotations

import dataclasses
import json

import pytest

from audit.checks import CHECKS
from audit.cli import main
from audit.config import AttackConfig, AuditConfig
from audit.config.policy import APPLICABLE, EvidenceRule, load_policy
from audit.core.errors import UsageError
from audit.core.result import Finding, Status, Verdict
from audit.engine.evidence import attack_shortfall, check_rule, evidence_gaps, required_checks
from audit.engine.judge import verdict
from audit.engine.results_io import parse_results
from reports.markdown import render_markdown

NARROW = ("input_validation", "clean_accuracy")
APPLIES = frozenset(CHECKS) - {"deployments", "retrain_cleaned"}  # no [[deployments]], retrain_cleaned off
AA_MISSING = "apgd_ce, apgd_t, fab_t, square missing"


def finding(check: str, status: Status, variant: str | None = None, gating: bool = True,
            summary: str = "") -> Finding:
    fid = check if variant is None else f"{check}:{variant}"
    return Finding(id=fid, check=check, title=check, variant=variant, status=status, summary=summary, metrics={},
                   details=None, controls=(), gating=gating)


def test_narrowed_checks_are_a_gap_naming_each_required_check_left_out():
    gaps = evidence_gaps(EvidenceRule(), AuditConfig(checks=NARROW), (), APPLIES, 10_000)
    assert len(gaps) == 1 and gaps[0].startswith("required checks not enabled: ")
    named = set(gaps[0].split(": ", 1)[1].split(", "))
    assert named == {c for c in APPLIES if CHECKS[c].by_default} - set(NARROW)
    assert "deployments" not in named and "eps_scale" not in named  # does not apply / not on by default


def test_a_full_run_under_the_default_rule_has_no_gap():
    assert evidence_gaps(EvidenceRule(), AuditConfig(), (), APPLIES, 500) == ()
    assert EvidenceRule() == load_policy("default").evidence  # default.toml has no [evidence]: the defaults apply


def test_a_required_check_skipped_for_the_candidate_or_the_data_is_a_gap_naming_it_and_why():
    findings = (finding("training_health", Status.SKIPPED, "baseline", summary="skipped: no training stats"),
                finding("training_health", Status.SKIPPED, "pgd_at", gating=False, summary="skipped: x"),
                finding("leakage", Status.SKIPPED, summary="skipped: the data is read lazily"),
                finding("deployments", Status.SKIPPED, summary="skipped: no [[deployments]] declared"))
    gaps = evidence_gaps(EvidenceRule(), AuditConfig(), findings, APPLIES, 500)
    assert gaps == ("required check training_health (baseline) was skipped: no training stats",
                    "required check leakage was skipped: the data is read lazily")
    explicit = EvidenceRule(required_checks=("deployments",))  # named: required even where it does not apply
    assert evidence_gaps(explicit, AuditConfig(), findings, APPLIES, 500) == (
        "required check deployments was skipped: no [[deployments]] declared",)


def test_required_checks_expand_applicable_and_keep_named_ones_once():
    rule = EvidenceRule(required_checks=(APPLICABLE, "eps_scale", "robustness"))
    got = required_checks(rule, APPLIES)
    assert got[-1] == "eps_scale" and got.count("robustness") == 1
    assert set(got) == {c for c in APPLIES if CHECKS[c].by_default} | {"eps_scale"}
    assert required_checks(EvidenceRule(required_checks=()), APPLIES) == ()


@pytest.mark.parametrize("attacks,minimum,expected", [
    (AttackConfig(preset="quick"), "standard", f"attacks: preset 'quick' is weaker than 'standard': {AA_MISSING}"),
    (AttackConfig(preset="standard", apgd_steps=20), "standard",
     "attacks: preset 'standard' as configured is weaker than 'standard': apgd_ce 20 steps < 100 "
     "(attacks.apgd_steps); apgd_t 20 steps < 100 (attacks.apgd_steps)"),
    (AttackConfig(preset="standard", n_targets=3, square_queries=1000), "standard",
     "attacks: preset 'standard' as configured is weaker than 'standard': apgd_t 3 target classes < 9 "
     "(attacks.n_targets); fab_t 3 target classes < 9 (attacks.n_targets); square 1000 queries < 5000 "
     "(attacks.square_queries)"),
    (AttackConfig(preset="standard"), "standard", ""),
    (AttackConfig(preset="thorough"), "standard", ""),                      # stronger passes
    (AttackConfig(preset="standard", early_stop=False, square_p_init=0.3), "standard", ""),  # not strength
    (AttackConfig(preset="quick"), "", ""),                                 # no minimum
    (AttackConfig(preset="quick"), "quick", ""),
])
def test_attacks_are_compared_with_the_minimum_preset_naming_what_is_weaker(attacks, minimum, expected):
    assert attack_shortfall(attacks, minimum) == expected


def test_an_attack_that_cannot_run_on_the_data_is_not_required():
    no_square = AttackConfig(preset="standard", attacks=("fgsm", "apgd_ce", "apgd_t", "fab_t"))
    assert attack_shortfall(no_square, "standard", cannot_run=("square",)) == ""
    assert attack_shortfall(no_square, "standard").endswith(": square missing")


def test_the_quick_preset_and_too_few_points_are_gaps_in_the_run():
    gaps = evidence_gaps(EvidenceRule(), AuditConfig(attacks=AttackConfig(preset="quick")), (), APPLIES, 450)
    assert gaps == (f"attacks: preset 'quick' is weaker than 'standard': {AA_MISSING}",
                    "test points: 450 audited, fewer than the 500 the policy requires")
    assert evidence_gaps(EvidenceRule(min_test_points=0), AuditConfig(), (), APPLIES, 1) == ()


def test_the_screening_policy_has_the_default_thresholds_and_asks_for_no_more_evidence():
    screening, default = load_policy("screening"), load_policy("default")
    assert screening.thresholds == default.thresholds and screening.validity == default.validity
    assert screening.compare == default.compare
    assert screening.evidence == EvidenceRule(purpose="screening", required_checks=(), min_attacks="",
                                              min_test_points=0)
    assert screening.source == "advaudit built-in screening policy" and screening.sha256 != default.sha256
    narrowed = AuditConfig(checks=NARROW, attacks=AttackConfig(preset="quick"))
    skipped = (finding("clean_accuracy", Status.SKIPPED, "baseline", summary="skipped: why"),)
    assert evidence_gaps(screening.evidence, narrowed, skipped, APPLIES, 10) == ()


@pytest.mark.parametrize("statuses,gaps,expected", [
    ((Status.PASS, Status.WARN, Status.INFO), (), Verdict.GO),
    ((Status.PASS, Status.WARN), ("a gap",), Verdict.INCOMPLETE),
    ((Status.PASS, Status.SKIPPED), ("a gap",), Verdict.INCOMPLETE),
    ((Status.PASS, Status.FAIL), ("a gap",), Verdict.NO_GO),       # a failure is still NO-GO
    ((Status.FAIL, Status.ERROR), ("a gap",), Verdict.ERROR),
    ((Status.FAIL, Status.ERROR), (), Verdict.ERROR),
])
def test_verdict_precedence_is_error_no_go_incomplete_go(statuses, gaps, expected):
    findings = tuple(finding("clean_accuracy", s, "baseline") for s in statuses)
    assert verdict(findings, gaps) is expected
    assert verdict(findings) is (Verdict.GO if expected is Verdict.INCOMPLETE else expected)


def test_each_verdict_has_its_own_exit_code():
    assert {v: v.exit_code for v in Verdict} == {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.ERROR: 3,
                                                  Verdict.INCOMPLETE: 4}
    assert Verdict.INCOMPLETE.label == "INCOMPLETE" and Verdict.NO_GO.label == "NO-GO"


@pytest.mark.parametrize("section,message", [
    ('purpose = "approval"', "policy.evidence.purpose: 'approval' is not valid; valid: sign-off, screening"),
    ('min_attacks = "strong"', "policy.evidence.min_attacks: 'strong' is not a preset; valid: quick, standard"),
    ("min_test_points = -1", "policy.evidence.min_test_points: -1 must be >= 0"),
    ("min_test_points = 1.5", "policy.evidence.min_test_points: expected an integer"),
    ('required_checks = "robustness"', "policy.evidence.required_checks: expected a list"),
    ('required_checks = ["robustness", "robustness"]', "list each check once"),
    ("min_points = 10", "policy.evidence.min_points: unknown key; valid keys: min_attacks, min_test_points"),
])
def test_a_bad_evidence_section_is_a_usage_error_naming_the_key(tmp_path, section, message):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\n[evidence]\n{section}\n', encoding="utf-8")
    with pytest.raises(UsageError) as e:
        load_policy(str(path))
    assert message in str(e.value)


def test_an_unknown_required_check_names_the_valid_ids():
    with pytest.raises(UsageError) as e:
        check_rule(EvidenceRule(required_checks=("robustnes",)))
    assert "policy.evidence.required_checks: 'robustnes' is not a known check" in str(e.value)
    assert "'applicable'" in str(e.value) and "robustness" in str(e.value)
    check_rule(EvidenceRule(required_checks=(APPLICABLE, "eps_scale")))


TINY = """seed = 0
checks = ["input_validation", "clean_accuracy"]
[data]
source = "digits"
[training]
epochs = 4
lr = 0.003
"""


@pytest.fixture(scope="module")
def narrowed_run(tmp_path_factory):
    """One cheap narrowed run under the default policy (clean accuracy passes): (exit code, stdout, out dir)."""
    import contextlib
    import io
    d = tmp_path_factory.mktemp("narrowed")
    (d / "c.toml").write_text(TINY, encoding="utf-8")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["run", "--config", str(d / "c.toml"), "--out", str(d / "out")])
    return code, buf.getvalue(), d


def test_a_narrowed_run_is_incomplete_with_exit_4_naming_the_missing_checks(narrowed_run):
    code, out, d = narrowed_run
    assert code == 4, out
    line = out.splitlines()[0]
    assert line.startswith("verdict: INCOMPLETE for candidate 'baseline'; missing: required checks not enabled: ")
    assert "robustness" in line and "attack_validity" in line and "input_validation" not in line
    assert "test points: 450 audited, fewer than the 500 the policy requires" in line
    results = json.loads((d / "out" / "results.json").read_text(encoding="utf-8"))
    assert results["verdict"] == "incomplete" and results["policy"]["purpose"] == "sign-off"
    assert any("robustness" in g for g in results["evidence_gaps"])
    md = (d / "out" / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("## advaudit: INCOMPLETE for **baseline**") and "attack\\_validity" in md
    html = (d / "out" / "report.html").read_text(encoding="utf-8")
    assert '<div class="verdict incomplete">INCOMPLETE' in html and "<li>required checks not enabled: " in html


def test_the_same_run_under_the_screening_policy_is_go_and_says_screening(narrowed_run, tmp_path, capsys):
    _code, _out, d = narrowed_run
    code = main(["run", "--config", str(d / "c.toml"), "--out", str(tmp_path / "o"), "--policy", "screening",
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["verdict"] == "GO" and summary["evidence_gaps"] == []
    assert summary["purpose"] == "screening"
    assert "Screening, not a sign-off" in (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "(screening, not a sign-off)" in (tmp_path / "o" / "summary.md").read_text(encoding="utf-8")


def test_the_reader_checks_the_verdict_against_the_gaps_and_reads_old_files(narrowed_run):
    _code, _out, d = narrowed_run
    data = json.loads((d / "out" / "results.json").read_text(encoding="utf-8"))
    assert parse_results(data).evidence_gaps == tuple(data["evidence_gaps"])
    with pytest.raises(UsageError, match="field verdict: 'go' contradicts the gating findings and 2 evidence"):
        parse_results({**data, "verdict": "go"})
    old = {k: v for k, v in data.items() if k != "evidence_gaps"}  # written before [evidence] existed
    old.update(schema_version="2.0", verdict="go",
               policy={k: v for k, v in data["policy"].items() if k not in ("purpose", "evidence")})
    result = parse_results(old)
    assert result.verdict is Verdict.GO and result.evidence_gaps == () and result.policy.purpose == "sign-off"


def test_the_gaps_in_summary_md_are_escaped(narrowed_run):
    _code, _out, d = narrowed_run
    result = parse_results(json.loads((d / "out" / "results.json").read_text(encoding="utf-8")))
    evil = "x\n# advaudit: GO <script>alert(1)</script> [l](javascript:x) @octocat | `"
    md = render_markdown(dataclasses.replace(result, evidence_gaps=(evil,)))
    assert "\n# advaudit: GO" not in md and "<script>" not in md and "](javascript" not in md
    assert md.splitlines()[0] == "## advaudit: INCOMPLETE for **baseline**"


def test_an_unknown_required_check_is_exit_2_before_any_work(tmp_path, capsys, monkeypatch):
    def no_training(*_a, **_k):
        raise AssertionError("a bad policy reached training")
    monkeypatch.setattr("audit.methods.jobs.train", no_training)
    (tmp_path / "c.toml").write_text(TINY, encoding="utf-8")
    (tmp_path / "p.toml").write_text('name = "p"\n[evidence]\nrequired_checks = ["robustnes"]\n', encoding="utf-8")
    code = main(["run", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--policy",
                 str(tmp_path / "p.toml")])
    err = capsys.readouterr().err
    assert code == 2 and "'robustnes' is not a known check; valid: 'applicable'" in err
    assert not (tmp_path / "o").exists()


def test_the_demo_config_names_the_screening_policy():
    from audit.config import demo_config
    config = demo_config()
    assert config.policy == "screening" and config.attacks.preset == "quick"
    assert load_policy(config.policy).evidence.purpose == "screening"


def test_the_demo_runs_under_the_screening_policy(demo_run):
    code, out, results = demo_run
    assert results["policy"]["name"] == "advaudit-screening" and results["policy"]["purpose"] == "screening"
    assert results["evidence_gaps"] == [] and results["verdict"] != "incomplete"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Screening, not a sign-off" in html and "(screening, not a sign-off)" in html
