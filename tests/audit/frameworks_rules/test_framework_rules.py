"""The NIST AI RMF mapping claims only what ran: every rule of coverage.toml is evaluated with its evidence present
and absent on a small result built here; "not measured" comes from the same facts and never contradicts a claim;
every registered check has a crosswalk row; the demo's and a no-defence run's tables hold no claim without its
evidence (the over-claims of issue 28 gone)."""
from __future__ import annotations

import dataclasses

import pytest

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
    VariantResult,
    Verdict,
)
from audit.frameworks.controls import (
    check_rules,
    coverage,
    crosswalk,
    nist_status,
    not_measured_threats,
    subcategories,
    threat_subcategories,
)
from audit.frameworks.facts import FACTS, USABLE, holds

SHA = "ab" * 32
SUBS = {s["id"] for _fn, _cat, s in subcategories()}


def finding(check: str, variant: str | None = None, details=None, status: Status = Status.PASS) -> Finding:
    return Finding(id=f"{check}:{variant}" if variant else check, check=check, title=check, variant=variant,
                   status=status, summary="", metrics={}, details=details, controls=CHECKS[check].controls,
                   gating=variant in (None, "pgd_at"))


def points(attacks: tuple[str, ...], passes: int = 10) -> tuple[RobustnessPoint, ...]:
    """The grid as the run records it: a gradient attack spends gradient passes, Square forward passes (queries);
    ``passes`` 0: no point was attacked (none was clean-correct)."""
    return tuple(RobustnessPoint(a, "linf", e, 0.5, 0.4, 0.6, 100, 0 if a == "square" else passes, "",
                                 passes if a == "square" else 0) for e in (0.05, 0.1) for a in (*attacks, "worst_case"))


def variant(name: str, attacks=("fgsm", "pgd", "square")) -> VariantResult:
    return VariantResult(name, "", name == "pgd_at", Accuracy(0.9, 0.85, 0.95, 100, 90), points(attacks))


C6 = {"validity_checks": [{"id": "C6", "status": "pass", "values": {"queries": 300, "attacked": 64}}]}
ART = {"attacks": {"pgd": {"ours": 0.5, "art": 0.5, "points": 200}, "square": {"ours": 0.7, "art": 0.72, "points": 64}}}
DEPLOY = {"rows": [{"name": "int8", "clean": {"value": 0.9, "n": 100, "correct": 90},
                    "robust_by_attack": {"transfer from source": 0.6, "Square": 0.7}}]}
RETRAIN = {"removed_rows": 30, "kept_rows": 970}


def full() -> AuditResult:
    """A result with every fact's evidence: a defence compared with the baseline on the same attacks (Square among
    them), the C6 probe, ART's Square, a deployment attacked with Square, hashed inputs and supplied weights, a
    cleaned retraining that removed rows."""
    findings = (finding("clean_accuracy", "baseline"), finding("clean_accuracy", "pgd_at"),
                finding("training_health", "baseline"), finding("training_health", "pgd_at"),
                finding("robustness", "baseline"), finding("robustness", "pgd_at"),
                finding("attack_validity", "pgd_at", C6), finding("art_agreement", "pgd_at", ART),
                finding("calibration", "pgd_at"), finding("corruptions", "pgd_at"),
                finding("deployments", None, DEPLOY), finding("datalab"), finding("backdoor"),
                finding("retrain_cleaned", None, RETRAIN, Status.INFO))
    result = AuditResult(
        schema_version="2", tool={}, created="", verdict=Verdict.GO, candidate="pgd_at",
        dataset=DatasetInfo("digits", "image", 1000, 400, 10, (1, 8, 8), (0.0, 1.0), (), SplitHashes(SHA, SHA)),
        model=ModelInfo("", {}, "weights.safetensors", SHA, 100, "SmallCNN"),
        policy=PolicyInfo("p", "1", SHA, "policy.toml", {"robustness": "fail below 0.7"}),
        config={"seed": 0, "attacks": {"attacks": ["fgsm", "pgd", "square"], "preset": "quick"},
                "defences": [{"name": "pgd_at", "method": "pgd"}]},
        environment={"torch": "2"}, variants=(variant("baseline"), variant("pgd_at")), findings=findings, nist=(),
        residual_risk=("the candidate misclassifies 30% under attack",))
    return dataclasses.replace(result, not_measured=not_measured_threats(result))


def skip(result: AuditResult, check: str | None = None) -> AuditResult:
    return dataclasses.replace(result, findings=tuple(
        dataclasses.replace(f, status=Status.SKIPPED, details=None) if check in (None, f.check) else f
        for f in result.findings))


def details(r: AuditResult, check: str, new) -> AuditResult:
    return dataclasses.replace(r, findings=tuple(dataclasses.replace(f, details=new) if f.check == check else f
                                                 for f in r.findings))


def no_queries(r: AuditResult) -> AuditResult:
    """Only white-box attacks: no Square in the grid, the probe skipped, ART's Square and the deployments gone."""
    r = dataclasses.replace(r, variants=tuple(dataclasses.replace(v, robustness=points(("fgsm", "pgd")))
                                              for v in r.variants))
    c6 = {"validity_checks": [{"id": "C6", "status": "skipped", "values": {}}]}
    art = {"attacks": {"pgd": {"ours": 0.5, "art": 0.5}}}
    return dataclasses.replace(r, findings=tuple(
        dataclasses.replace(f, details=c6) if f.check == "attack_validity" else
        dataclasses.replace(f, details=art) if f.check == "art_agreement" else f
        for f in skip(r, "deployments").findings))


# fact -> the same result without that fact's evidence (a new fact needs its absent case here)
ABSENT = {
    "finding_usable": lambda r: skip(r),
    "defence_variant": lambda r: dataclasses.replace(r, config={**r.config, "defences": []}),
    "check_usable": lambda r: skip(r),
    "policy_hashed": lambda r: dataclasses.replace(r, policy=dataclasses.replace(r.policy, sha256="")),
    "inputs_hashed": lambda r: dataclasses.replace(r, dataset=dataclasses.replace(
        r.dataset, sha256=SplitHashes(SHA, ""))),
    "supplied_weights_hashed": lambda r: dataclasses.replace(r, model=dataclasses.replace(r.model, file_sha256="")),
    "run_recorded": lambda r: dataclasses.replace(r, environment={}),
    "verdict_decided": lambda r: dataclasses.replace(r, verdict=Verdict.ERROR),
    "not_measured_listed": lambda r: dataclasses.replace(r, not_measured=()),
    "residual_risk_stated": lambda r: dataclasses.replace(r, residual_risk=()),
    "findings_reported": lambda r: skip(r),
    "defences_compared": lambda r: dataclasses.replace(r, variants=r.variants[1:]),
    "query_attack_ran": no_queries,
    "gradient_attack_ran": lambda r: skip(r, "robustness"),
    "validity_checks_ran": lambda r: skip(r, "attack_validity"),
    "rows_removed": lambda r: details(r, "retrain_cleaned", {**RETRAIN, "removed_rows": 0, "kept_rows": 1000}),
}


def status(result: AuditResult) -> dict:
    return {s.id: s for s in nist_status(result)}


def naming(fact: str | None = None) -> list[tuple[str, str]]:
    """(fact, check) for every place coverage.toml names a fact: rules, check rules, not-measured entries and their
    cases (a case's check is its entry's); only those of ``fact`` when given."""
    c = coverage()
    out = [(r["needs"], r.get("check", "")) for r in c["rules"] + c["check_rules"]]
    for t in c["not_measured"]:
        out += [(t[k], t.get("check", "")) for k in ("unless", "when") if k in t]
        out += [(case["when"], t.get("check", "")) for case in t.get("cases", ())]
    return [x for x in out if fact in (None, x[0])]


def all_named_facts() -> list[str]:
    return [name for name, _ in naming()]


def fact_checks() -> list[tuple[str, str]]:
    """(fact, check) for every fact and each check a rule gives it ("" for a fact no rule gives a check)."""
    return sorted({(name, c) for name in FACTS for c in {c for _, c in naming(name)} | {""}
                   if c or not any(c for _, c in naming(name))})


def test_every_fact_the_rules_name_is_registered_and_every_fact_has_an_absent_case():
    assert set(all_named_facts()) <= set(FACTS), set(all_named_facts()) - set(FACTS)
    assert set(ABSENT) == set(FACTS)
    c = coverage()
    for r in c["rules"] + c["check_rules"]:
        assert r["subcategory"] in SUBS and r["why"]
    for r in c["rules"]:
        assert r["strength"] in ("direct", "supporting") and r["evidence"] in c["evidence"]
    for r in c["check_rules"]:
        assert r["check"] in CHECKS and r["subcategory"] in {x.id for x in CHECKS[r["check"]].controls}
    assert {ch for _, ch in naming() if ch} <= set(CHECKS)
    with pytest.raises(KeyError):
        holds("no_such_fact", full())


@pytest.mark.parametrize(("name", "check"), fact_checks(), ids=lambda x: x or "-")
def test_each_fact_holds_with_its_evidence_and_not_without(name, check):
    """With each check its rules give it (a per-finding fact: on a finding of that check, the defence's first)."""
    r = full()
    of = check if FACTS[name].per_finding and check else "training_health"
    f = sorted((f for f in r.findings if f.check == of), key=lambda f: f.variant != "pgd_at")[0]
    assert holds(name, r, f, check)
    absent = ABSENT[name](r)
    f_absent = next(g for g in absent.findings if g.id == f.id)
    assert holds(name, absent, f_absent, check) == ""


@pytest.mark.parametrize("rule", coverage()["rules"], ids=lambda r: f"{r['subcategory']}<-{r['evidence']}")
def test_a_run_rule_claims_its_subcategory_only_with_its_evidence(rule):
    ref, sub = f"run:{rule['evidence']}", rule["subcategory"]
    got = status(full())[sub]
    assert ref in got.findings and got.status in ("evidence", "supporting")
    assert any(b.startswith(ref + ":") for b in got.basis)
    gone = status(ABSENT[rule["needs"]](full()))[sub]
    assert ref not in gone.findings
    if not gone.findings:
        assert gone.status == "not measured" and gone.reason
        assert gone.reason == rule.get("missing", gone.reason)


@pytest.mark.parametrize("rule", coverage()["check_rules"], ids=lambda r: f"{r['check']}:{r['subcategory']}")
def test_a_check_rule_lets_a_declared_control_count_only_when_what_it_needs_holds(rule):
    sub = rule["subcategory"]
    refs = [f.id for f in full().findings if f.check == rule["check"]]
    got = status(full())[sub]
    assert set(refs) & set(got.findings)
    gone = status(ABSENT[rule["needs"]](full()))[sub]
    assert not set(refs) & set(gone.findings)


@pytest.mark.parametrize("check", sorted({c for c in CHECKS if CHECKS[c].controls}))
def test_a_checks_declared_controls_count_only_while_its_finding_is_usable(check):
    r = full()
    present = [f for f in r.findings if f.check == check]
    if not present:
        r = dataclasses.replace(r, findings=(*r.findings, finding(check)))
        present = [r.findings[-1]]
    for sub in {c.id for c in CHECKS[check].controls} - {x["subcategory"] for x in coverage()["check_rules"]
                                                          if x["check"] == check}:
        assert present[0].id in status(r)[sub].findings
    skipped = status(skip(r, check))
    assert not any(f.id in s.findings for s in skipped.values() for f in present)


@pytest.mark.parametrize("entry", coverage()["not_measured"], ids=lambda t: t["threat"][:40])
def test_a_threat_is_listed_as_not_measured_exactly_when_its_fact_says_so(entry):
    listed = {t.threat for t in not_measured_threats(full())}
    fact = entry.get("unless") or entry.get("when")
    if fact is None:
        assert entry["threat"] in listed and entry["threat"] in {t.threat for t in not_measured_threats(skip(full()))}
        return
    without = {t.threat for t in not_measured_threats(ABSENT[fact](full()))}
    if "unless" in entry:
        assert entry["threat"] not in listed and entry["threat"] in without
    else:
        assert entry["threat"] in listed and entry["threat"] not in without


@pytest.mark.parametrize("entry", [t for t in coverage()["not_measured"] if t.get("cases")],
                         ids=lambda t: t["threat"][:40])
def test_a_listed_threats_why_is_its_first_case_whose_fact_holds_else_its_own(entry):
    """Each case's why with its fact present (the earlier cases' absent), and not without it; with none, the
    entry's own why: a why never states what the facts do not show."""
    r = ABSENT[entry["unless"]](full()) if "unless" in entry else full()
    for case in entry["cases"]:
        [line] = [t for t in not_measured_threats(r) if t.threat == entry["threat"]]
        assert line.why.startswith(case["why"].split("{found}")[0]) and "{found}" not in line.why
        r = ABSENT[case["when"]](r)
        [line] = [t for t in not_measured_threats(r) if t.threat == entry["threat"]]
        assert not line.why.startswith(case["why"].split("{found}")[0])
    assert line.why == entry["why"]


def test_when_square_ran_the_black_box_line_says_what_ran_and_what_remains():
    r = full()
    [line] = [t for t in r.not_measured if t.threat.startswith("Transfer evasion")]
    assert "native Square (300 queries) on 64" in line.why and "ART's Square" in line.why
    assert "Square against 1 deployment(s)" in line.why and "{found}" not in line.why
    assert not any("Only white-box" in t.why for t in r.not_measured)
    white = not_measured_threats(no_queries(r))
    assert any(t.why.startswith("Only white-box gradient attacks ran") for t in white)


@pytest.mark.parametrize("make", [full, lambda: skip(full()), lambda: no_queries(full()),
                                  lambda: ABSENT["defences_compared"](full())], ids=["full", "skipped", "white", "one"])
def test_no_subcategory_or_threat_is_both_claimed_and_not_measured(make):
    r = make()
    r = dataclasses.replace(r, not_measured=not_measured_threats(r))
    nist, listed = status(r), {t.threat for t in r.not_measured}
    for threat, sub in threat_subcategories().items():
        assert threat in listed and nist[sub].status == "not measured"
    for entry in coverage()["not_measured"]:
        if entry["threat"] in listed and "unless" in entry:  # listed: nothing resting on the same fact is claimed
            relying = [x for x in coverage()["rules"] if x["needs"] == entry["unless"]]
            assert not any(f"run:{x['evidence']}" in nist[x["subcategory"]].findings for x in relying)
    for s in nist.values():
        assert (s.status == "not measured") == (not s.findings) and (s.status != "not measured" or s.reason)


def test_the_over_claims_are_gone_on_a_small_result():
    nist = status(full())
    assert nist["MEASURE 2.11"].status == "not measured" and "group" in nist["MEASURE 2.11"].reason
    assert nist["MEASURE 2.9"].status == "not measured"
    r = full()
    one = dataclasses.replace(r, config={**r.config, "defences": []}, variants=r.variants[:1],
                              findings=tuple(f for f in r.findings if f.variant != "pgd_at"))
    assert "retrain_cleaned" in status(one)["MANAGE 1.3"].findings     # rows removed: a risk response measured
    alone = status(ABSENT["rows_removed"](one))                        # none removed: the baseline again
    for sub in ("MANAGE 1.2", "MANAGE 1.3"):
        assert alone[sub].status == "not measured" and "defended variant" in alone[sub].reason
    assert "removed no row" in alone["MANAGE 1.3"].reason


@pytest.mark.parametrize("check", list(CHECKS))
def test_every_registered_check_has_a_crosswalk_row(check):
    row = crosswalk(check)
    assert row.get("ai_100_2") and row.get("eu_ai_act") and row.get("iso_42001") and "atlas" in row
    assert all(a.startswith("AML.") for a in row["atlas"])
    assert all(x.startswith(("Art. ", "Annex ")) for x in row["eu_ai_act"])
    assert all(x.startswith("A.") for x in row["iso_42001"])


# --- the demo (session fixture) and the demo without its defence -----------------------------------------------

def claims_hold(result: AuditResult) -> list[str]:
    """Every claim of the stored table re-derived from its rule: a run reference needs its rule's fact, a finding
    reference a usable finding that declares the control and whose check rules hold."""
    by_id = {f.id: f for f in result.findings}
    bad = []
    for s in result.nist:
        for ref in s.findings:
            if ref.startswith("run:"):
                rules = [x for x in coverage()["rules"] if f"run:{x['evidence']}" == ref and x["subcategory"] == s.id]
                ok = any(holds(x["needs"], result, None, x.get("check", "")) for x in rules)
            else:
                f = by_id[ref]
                ok = f.status in USABLE and s.id in {c.id for c in f.controls} and all(
                    holds(x["needs"], result, f, f.check) for x in check_rules(f.check, s.id))
            bad += [] if ok else [f"{s.id} <- {ref}"]
    return bad


def without_defences(result: AuditResult) -> AuditResult:
    """The demo as a one-variant run: the defence's variant and findings removed, no [[defences]]."""
    r = dataclasses.replace(result, config={**result.config, "defences": []},
                            variants=tuple(v for v in result.variants if v.name == "baseline"),
                            findings=tuple(f for f in result.findings if f.variant in (None, "baseline")))
    r = dataclasses.replace(r, not_measured=not_measured_threats(r))
    return dataclasses.replace(r, nist=nist_status(r))


@pytest.mark.slow
def test_the_demos_table_claims_nothing_without_its_evidence_and_the_over_claims_are_gone(demo_result):
    assert claims_hold(demo_result) == []
    nist = {s.id: s for s in demo_result.nist}
    assert nist["MEASURE 2.11"].status == "not measured"                      # fairness: not via Datalab
    assert nist["MEASURE 2.9"].status == "not measured"                       # explainability: not via calibration
    assert "run:defence_comparison" in nist["MANAGE 1.3"].findings           # the demo does compare a defence
    assert "run:black_box" in nist["MEASURE 2.7"].findings
    whys = " ".join(t.why for t in demo_result.not_measured)
    assert "Only white-box gradient attacks ran" not in whys and "native Square" in whys and "ART's Square" in whys
    assert {t.threat for t in demo_result.not_measured} & set(threat_subcategories()) == set(threat_subcategories())


@pytest.mark.slow
def test_a_no_defence_run_claims_no_defence_comparison(demo_result):
    r = without_defences(demo_result)
    assert claims_hold(r) == []
    nist = {s.id: s for s in r.nist}
    for sub in ("MANAGE 1.2", "MANAGE 1.3"):
        assert nist[sub].status == "not measured" and "defended variant" in nist[sub].reason, nist[sub]
    assert not any(ref.startswith("training_health") for s in r.nist for ref in s.findings if s.id == "MANAGE 1.3")


@pytest.mark.slow
def test_the_demo_report_shows_the_rules_basis_and_crosswalks_only_checks_that_ran(demo_run):
    html = (demo_run[1] / "report.html").read_text(encoding="utf-8")
    nist = html[html.index('id="nist"'):html.index('id="not-measured"')]
    assert "defended &#39;pgd_at&#39; (trained by this run) compared with &#39;baseline&#39;" in nist
    crosswalk_rows = nist[nist.index("Crosswalk of the checks"):]
    assert "<tr><td>robustness</td>" in crosswalk_rows
    assert "<tr><td>deployments</td>" not in crosswalk_rows and "<tr><td>retrain_cleaned</td>" not in crosswalk_rows
