"""The attestation's predicate: a versioned predicateType, a JSON Schema shipped in the package that the predicate
validates against (and that catches a missing field), the checks, preset, threat model, policy and verdict basis
it carries; ``Audit.write(sign=)`` signs at write time; the report's sign-off block points at the attestation."""
import base64
import copy
import dataclasses
import json
from importlib import resources

import jsonschema
import pytest

from audit.cli import main
from audit.core.errors import UsageError
from audit.evidence.attestation import PREDICATE_TYPE, predicate, problems, schema, signoff, validate
from audit.evidence.signing import ENVELOPE

pytestmark = pytest.mark.slow
KEY = bytes(range(32))


def test_the_shipped_schema_is_a_valid_schema_in_the_package():
    shipped = json.loads(resources.files("audit.evidence").joinpath("predicate.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(shipped)
    assert shipped == schema() and PREDICATE_TYPE in shipped["$id"]
    assert PREDICATE_TYPE.startswith("https://") and PREDICATE_TYPE.endswith("/v1")


def test_the_predicate_carries_what_ran_and_validates(demo_result):
    p = predicate(demo_result, signoff(KEY, "ab" * 32, "Ann", "Risk"))
    assert problems(p) == []
    assert [c["finding"] for c in p["checks"]] == [f.id for f in demo_result.findings]
    assert {c["status"] for c in p["checks"]} == {f.status.value for f in demo_result.findings}
    assert p["preset"] == demo_result.config["attacks"]["preset"] and p["attacks"]["eps"]
    assert p["threat_model"]["name"] == demo_result.threat_model.name
    assert p["policy"]["sha256"] == demo_result.policy.sha256 and p["policy"]["version"] == demo_result.policy.version
    assert p["verdict"] == demo_result.verdict.value and p["verdict_basis"]["purpose"] == demo_result.policy.purpose
    assert p["data_sha256"]["test"] == demo_result.dataset.sha256.test
    assert p["signoff"]["reviewer"] == "Ann" and base64.b64decode(p["signoff"]["public_key"]) == KEY


def test_failed_gating_findings_are_named_in_the_basis(demo_result):
    gating = next(f for f in demo_result.findings if f.gating)
    failed = dataclasses.replace(gating, status=type(gating.status)("fail"))
    result = dataclasses.replace(demo_result, findings=tuple(failed if f is gating else f
                                                             for f in demo_result.findings))
    assert predicate(result)["verdict_basis"]["failed_gating"] == [gating.id]


@pytest.mark.parametrize("field", ["verdict", "checks", "threat_model", "policy", "preset", "verdict_basis"])
def test_a_predicate_missing_a_required_field_fails_the_schema(demo_result, field):
    p = predicate(demo_result)
    del p[field]
    assert any(field in line for line in problems(p))
    with pytest.raises(UsageError):
        validate(p)


@pytest.mark.parametrize("path, value", [(("checks", 0, "status"), "great"), (("signoff", "reviewer"), "a\x1bb"),
                                         (("signoff", "key_fingerprint"), "not hex"), (("verdict",), "GO!")])
def test_a_predicate_with_a_bad_value_fails_the_schema(demo_result, path, value):
    p = copy.deepcopy(predicate(demo_result, signoff(KEY, "ab" * 32)))
    target = p
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert problems(p)


def test_the_provenance_block_is_attested_when_the_result_has_one(demo_result):
    from audit.core.result import Provenance
    result = dataclasses.replace(demo_result, provenance=Provenance(user="ci", host="runner-1",
                                                                    started="2026-01-01T00:00:00Z", tool_version="0"))
    p = predicate(result)
    assert p["provenance"]["user"] == "ci" and p["provenance"]["host"] == "runner-1" and problems(p) == []
    assert "provenance" not in predicate(dataclasses.replace(demo_result, provenance=None))
    if demo_result.provenance is not None:  # the demo's own block, as results.json holds it
        assert problems(predicate(demo_result)) == [] and predicate(demo_result)["provenance"]["host"]


def test_audit_write_signs_with_sign_and_its_older_name(demo_result, tmp_path, capsys):
    from audit.api.report import Audit
    assert main(["keygen", str(tmp_path / "k")]) == 0
    reviewed = dataclasses.replace(demo_result, reviewer={"name": "A. Auditor\x1b[31m", "role": "QA", "date": ""})
    out = Audit(reviewed).write(tmp_path / "o", formats=("html", "json"), sign=tmp_path / "k")
    stmt = json.loads(base64.b64decode(json.loads((out / ENVELOPE).read_text())["payload"]))
    assert stmt["predicateType"] == PREDICATE_TYPE and problems(stmt["predicate"]) == []
    assert stmt["predicate"]["signoff"]["reviewer"] == "A. Auditor[31m"  # control characters dropped
    assert json.loads((out / "manifest.json").read_text())["signoff"] == stmt["predicate"]["signoff"]
    capsys.readouterr()
    assert main(["verify", str(out), "--key", str(tmp_path / "k.pub")]) == 0
    assert main(["verify", str(out)]) == 5
    again = Audit(demo_result).write(tmp_path / "o2", formats=("html", "json"), sign_key=str(tmp_path / "k"))
    assert (again / ENVELOPE).is_file()
    with pytest.raises(UsageError, match="once"):
        Audit(demo_result).write(tmp_path / "o3", sign=tmp_path / "k", sign_key=tmp_path / "other")
    with pytest.raises(UsageError, match="sign"):
        Audit(demo_result).write(tmp_path / "o3", sign=42)
    assert not (tmp_path / "o3").exists()


def test_the_report_review_block_points_at_the_attestation(demo_result):
    from reports import render_html
    html = render_html(demo_result)
    block = html[html.index('id="review"'):]
    assert "attestation.dsse.json" in block and "advaudit verify DIR --key PUBLIC.pem" in block
    assert "Date (YYYY-MM-DD)" in block and "Signature" in block
