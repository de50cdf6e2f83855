"""The framework rules' evidence looked at closely (beside test_framework_rules.py, whose small results these reuse):
a black-box claim needs queries actually made, by each of its sources; an attack grid counts only with its variant's
robustness finding judged; a loaded defence is said to be loaded; a run with no robustness check says so in "Not
measured"; a stored result's claims are recomputed by refresh_claims, so an old or crafted table claims nothing."""
from __future__ import annotations

import dataclasses

import pytest
from test_framework_rules import ART, C6, DEPLOY, details, full, no_queries, points, skip, status

from audit.checks import CHECKS
from audit.core.result import AuditResult, Control, Finding, Status, SubcategoryStatus
from audit.frameworks.controls import not_measured_threats, refresh_claims
from audit.frameworks.facts import holds

REGISTRY = {k: c.controls for k, c in CHECKS.items()}


def grid(r: AuditResult, attacks=("fgsm", "pgd", "square"), passes: int = 10) -> AuditResult:
    return dataclasses.replace(r, variants=tuple(dataclasses.replace(v, robustness=points(attacks, passes))
                                                 for v in r.variants))


def robustness_status(r: AuditResult, s: Status) -> AuditResult:
    return dataclasses.replace(r, findings=tuple(dataclasses.replace(f, status=s) if f.check == "robustness" else f
                                                 for f in r.findings))


def art(square: dict) -> dict:
    return {"attacks": {**ART["attacks"], "square": square}}


def deploy(correct: int) -> dict:
    return {"rows": [{**DEPLOY["rows"][0], "clean": {"value": correct / 100, "n": 100, "correct": correct}}]}


# each source of a black-box claim on its own (the others absent): (with queries made, the same without any)
SOURCES = {
    "grid Square": (lambda r: grid(r), lambda r: grid(r, passes=0)),
    "grid Square, robustness crashed": (lambda r: grid(r), lambda r: robustness_status(grid(r), Status.ERROR)),
    "grid Square, robustness skipped": (lambda r: grid(r), lambda r: robustness_status(grid(r), Status.SKIPPED)),
    "C6 probe": (lambda r: details(r, "attack_validity", C6), lambda r: details(r, "attack_validity", {
        "validity_checks": [{"id": "C6", "status": "pass", "values": {"eps": 0.1, "white_box_robust": 0,
                                                                       "attacked": 0}}]})),
    "ART's Square": (lambda r: details(r, "art_agreement", ART),
                     lambda r: details(r, "art_agreement", art({"ours": 0.7, "art": 0.72, "points": 0}))),
    "deployments' Square": (lambda r: details(r, "deployments", DEPLOY),
                            lambda r: details(r, "deployments", deploy(0))),
}


def only(make) -> AuditResult:
    """full() with no query evidence, then the one source ``make`` adds (the deployments finding usable again)."""
    r = no_queries(full())
    r = dataclasses.replace(r, findings=tuple(dataclasses.replace(f, status=Status.PASS) for f in r.findings))
    return make(details(r, "deployments", {"rows": []}))


@pytest.mark.parametrize("source", SOURCES)
def test_a_black_box_claim_needs_queries_actually_made(source):
    made, none = (only(m) for m in SOURCES[source])
    assert holds("query_attack_ran", made, None, "robustness")
    assert "run:black_box" in status(made)["MEASURE 2.7"].findings
    assert not any(t.threat.startswith("Black-box") for t in not_measured_threats(made))
    assert holds("query_attack_ran", none, None, "robustness") == ""
    assert "run:black_box" not in status(none)["MEASURE 2.7"].findings
    assert any(t.threat.startswith("Black-box") for t in not_measured_threats(none))


def test_the_c6_probe_that_found_nothing_to_attack_is_no_black_box_evidence():
    """The reviewer's case: C6 passes with attacked 0 when no point survived the white-box attacks."""
    r = only(SOURCES["C6 probe"][1])
    assert holds("query_attack_ran", r, None, "robustness") == ""
    [line] = [t for t in not_measured_threats(r) if t.threat.startswith("Black-box")]
    assert line.why.startswith("Only white-box gradient attacks ran (FGSM")


@pytest.mark.parametrize("bad", [Status.ERROR, Status.SKIPPED])
def test_an_attack_grid_counts_only_with_its_variants_robustness_finding_judged(bad):
    r = robustness_status(full(), bad)
    assert holds("defences_compared", full(), None, "robustness")
    assert holds("defences_compared", r, None, "robustness") == ""
    assert holds("gradient_attack_ran", r, None, "robustness") == ""
    nist = status(r)
    for sub in ("MANAGE 1.2", "MANAGE 1.3"):
        assert "run:defence_comparison" not in nist[sub].findings
    one = dataclasses.replace(r, findings=tuple(                   # the defence's finding alone judged: no pair
        dataclasses.replace(f, status=Status.PASS) if f.id == "robustness:pgd_at" else f for f in r.findings))
    assert holds("defences_compared", one, None, "robustness") == ""
    assert holds("gradient_attack_ran", one, None, "robustness").endswith("grid of 'pgd_at'")


@pytest.mark.parametrize("weights", ["", "pgd_at.safetensors"])
def test_the_defence_comparison_says_whether_the_defence_was_trained_here_or_loaded(weights):
    r = full()
    r = dataclasses.replace(r, config={**r.config, "defences": [{"name": "pgd_at", "method": "pgd",
                                                                  "weights": weights}]})
    [basis] = [b for b in status(r)["MANAGE 1.3"].basis if b.startswith("run:defence_comparison:")]
    said, unsaid = ("loaded from weights", "trained by this run") if weights else \
        ("trained by this run", "loaded from weights")
    compared = holds("defences_compared", r, None, "robustness")
    assert compared.startswith(f"defended 'pgd_at' ({said}") and unsaid not in compared and compared in basis
    assert said in holds("defence_variant", r, next(f for f in r.findings if f.id == "training_health:pgd_at"))


def narrowed() -> AuditResult:
    """The reviewer's narrowed run: `checks` without robustness, so no robustness finding and empty grids."""
    r = grid(full(), attacks=())
    r = dataclasses.replace(r, variants=tuple(dataclasses.replace(v, robustness=()) for v in r.variants),
                            findings=tuple(f for f in r.findings if f.check in ("clean_accuracy", "input_validation")))
    return dataclasses.replace(r, not_measured=not_measured_threats(r))


def test_a_run_without_the_robustness_check_says_no_evasion_was_measured():
    r = narrowed()
    why = {t.threat: t.why for t in r.not_measured}
    assert "White-box (gradient) evasion" in why
    assert not any(w.startswith(("Only white-box", "Standard attacks")) for w in why.values())
    assert "neither white-box nor black-box" in why["Black-box (query-based and transfer) evasion"]
    assert why["Adaptive attacks designed against the specific defence"].startswith("No evasion attack ran")
    record = " ".join(status(r)["MEASURE 2.1"].basis)
    assert "attacks configured: fgsm, pgd, square (quick), none ran" in record
    assert "White-box (gradient) evasion" not in {t.threat for t in full().not_measured}
    assert "attacks fgsm, pgd, square ran (quick)" in " ".join(status(full())["MEASURE 2.1"].basis)


def test_the_adaptive_attack_line_says_whether_validity_checks_ran():
    def adaptive(r):
        return next(t.why for t in not_measured_threats(r) if t.threat.startswith("Adaptive"))
    assert adaptive(full()).startswith("Standard attacks with validity checks ran (1 validity checks judged")
    assert adaptive(skip(full(), "attack_validity")).startswith("Standard attacks ran (FGSM")
    assert "no attack validity check" in adaptive(skip(full(), "attack_validity"))


# --- refresh_claims: a stored result's claims recomputed by the current rules ------------------------------------

def forged(r: AuditResult) -> AuditResult:
    """The reviewer's forged results.json: MEASURE 2.11 'evidence' via a reference no rule has."""
    fake = SubcategoryStatus("MEASURE 2.11", "MEASURE", "MEASURE 2", "Fairness and bias", "evidence",
                             ("run:fairness_audit",), basis=("run:fairness_audit: demographic parity within 1%",))
    return dataclasses.replace(r, nist=(fake,), not_measured=())


def old_style(r: AuditResult) -> AuditResult:
    """A schema 2.1 result: datalab declared MEASURE 2.11, calibration MEASURE 2.9; one variant, no defence, and
    its table claims them, and MANAGE 1.2/1.3 via run:defence_comparison."""
    def old_controls(f: Finding) -> Finding:
        extra = {"datalab": ("MEASURE 2.11",), "calibration": ("MEASURE 2.9",)}.get(f.check, ())
        return dataclasses.replace(f, controls=(*f.controls, *(Control(c, "supporting") for c in extra)))
    one = dataclasses.replace(r, config={**r.config, "defences": []}, variants=r.variants[:1],
                              findings=tuple(old_controls(f) for f in r.findings if f.variant != "pgd_at"
                                             and f.check != "retrain_cleaned"))
    table = tuple(SubcategoryStatus(sid, sid.split()[0], sid.split(".")[0], "", "supporting", refs) for sid, refs in
                  (("MEASURE 2.11", ("datalab",)), ("MEASURE 2.9", ("calibration:baseline",)),
                   ("MANAGE 1.2", ("run:defence_comparison",)), ("MANAGE 1.3", ("run:defence_comparison",))))
    return dataclasses.replace(one, nist=table, not_measured=(), residual_risk=(
        "2 threat classes were not measured (see 'Not measured'); their risk is unknown, not zero.",))


def test_refresh_claims_drops_a_forged_claim():
    r = refresh_claims(forged(full()), REGISTRY)
    nist = {s.id: s for s in r.nist}
    assert nist["MEASURE 2.11"].status == "not measured" and not nist["MEASURE 2.11"].findings
    assert not any("fairness_audit" in ref for s in r.nist for ref in (*s.findings, *s.basis))
    assert len(r.nist) == len(status(full())) and r.not_measured == full().not_measured


@pytest.mark.parametrize("declared", [REGISTRY, None], ids=["registry", "stored-controls"])
def test_refresh_claims_drops_an_old_tables_over_claims(declared):
    r = refresh_claims(old_style(full()), declared)
    nist = {s.id: s for s in r.nist}
    assert nist["MEASURE 2.11"].status == "not measured" and "group" in nist["MEASURE 2.11"].reason
    for sub in ("MANAGE 1.2", "MANAGE 1.3"):
        assert "run:defence_comparison" not in nist[sub].findings
    assert r.residual_risk == (f"{len(r.not_measured)} threat classes were not measured (see 'Not measured'); "
                               "their risk is unknown, not zero.",)
    if declared is not None:   # the stored controls replaced by what the checks declare now
        assert nist["MEASURE 2.9"].status == "not measured"
        assert all(f.controls == REGISTRY[f.check] for f in r.findings)
