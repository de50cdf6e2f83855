"""The check contract: a check is one registered object with defaults, a scope and hooks; the registry is the
only list (ordered by rank), a duplicate id or rank is an error, and the engine calls each scope's measure."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from audit.checks import CHECKS, base
from audit.checks.base import RunCheck, Scope, VariantCheck, register
from audit.core.result import Details, Measurement, Status
from audit.engine.pipeline import measure_safely


@dataclass(frozen=True)
class NoteDetails(Details):
    seen: str


class Echo(VariantCheck):
    id, rank, title, description = "echo_test", 10_001, "Echo", "measures the variant it is given"
    Details = NoteDetails

    def measure(self, ctx, variant):
        return Measurement(check=self.id, variant=variant, metrics={"x": 1.0}, details=NoteDetails(variant))


class Once(RunCheck):
    id, rank, title, description = "once_test", 10_002, "Once", "measures once"
    requires = (Echo,)

    def measure(self, ctx):
        return Measurement(check=self.id, summary="ran")


def fake_ctx(measured=None):
    """``measured``: check id, or (check id, variant), -> measurement."""
    found = measured or {}
    return SimpleNamespace(measurement=lambda cid, variant=None: found.get((cid, variant), found.get(cid)))


def test_the_registry_is_every_check_in_rank_order_with_scopes_from_the_enum():
    ranks = [c.rank for c in CHECKS.values()]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert {c.scope for c in CHECKS.values()} <= set(Scope)
    assert Scope.VARIANT.value == "variant" and Scope.RUN.value == "data"   # results.json's words, kept
    for c in CHECKS.values():
        assert isinstance(c, VariantCheck) == (c.scope is Scope.VARIANT)
        assert all(isinstance(dep, type) for dep in c.requires + c.after)


def test_register_refuses_a_second_check_with_the_same_id_or_rank(monkeypatch):
    monkeypatch.setattr(base, "REGISTERED", {})
    register(Echo)
    with pytest.raises(ValueError, match="registered twice"):
        register(type("EchoAgain", (Echo,), {}))
    with pytest.raises(ValueError, match="rank 10001"):
        register(type("Other", (Echo,), {"id": "other_test"}))
    assert list(base.REGISTERED) == ["echo_test"]


def test_defaults_and_dependencies_by_class():
    once = Once()
    assert once.needs() == ("echo_test",) and once.follows() == ("echo_test",)
    assert once.not_applicable(None) == "" and once.notes(None) == () and once.residual_risk(None) == ""
    m = Measurement(check=once.id)
    assert once.with_threshold(m, None) is m and once.by_default and once.compared == ()


def test_measure_safely_passes_the_variant_only_to_variant_checks_and_skips_without_requirements():
    m = measure_safely(Echo(), fake_ctx(), "v1")
    assert m.variant == "v1" and m.details.seen == "v1"
    skipped = measure_safely(Once(), fake_ctx(), None)
    assert skipped.skipped == "needs the echo_test check's result (it was not enabled)"
    ran = measure_safely(Once(), fake_ctx({"echo_test": Measurement(check="echo_test")}), None)
    assert ran.summary == "ran" and ran.skipped is None


def test_a_variant_checks_requirement_is_looked_up_on_the_same_variant():
    class After(Echo):
        id, rank, requires = "after_echo_test", 10_004, (Echo,)
    ctx = fake_ctx({("echo_test", "v1"): Measurement(check="echo_test", variant="v1")})
    assert measure_safely(After(), ctx, "v1").skipped is None
    assert measure_safely(After(), ctx, "v2").skipped == "needs the echo_test check's result (it was not enabled)"


def test_a_check_must_implement_measure():
    class Incomplete(RunCheck):
        id, rank, title, description = "incomplete_test", 10_003, "I", "no measure"
    with pytest.raises(TypeError):
        Incomplete()


def test_judging_calls_the_checks_threshold_hook():
    from audit.config.policy import Threshold
    from audit.engine.judge import judge

    class Marks(Echo):
        def with_threshold(self, m, threshold):
            return Measurement(check=m.check, variant=m.variant, metrics=m.metrics, summary=f"vs {threshold.min}")
    f = judge(Marks().measure(None, "v"), Marks(), Threshold("x", min=2.0), gating=True)
    assert f.status is Status.FAIL and f.summary == "vs 2.0"
