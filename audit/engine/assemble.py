"""Findings + trained variants -> the immutable AuditResult: per-variant results, the best variant under the
policy, what was not measured, the residual-risk statements and the environment."""
from __future__ import annotations

import dataclasses
import datetime as dt
import platform

import numpy as np
import torch

from audit.checks import CHECKS
from audit.checks.robustness import Robustness
from audit.checks.run_view import RobustnessGrid, TestLogits
from audit.core.metrics import WORST_CASE, Accuracy, pack_bits, same_eps
from audit.core.result import (
    SCHEMA_VERSION,
    AuditResult,
    DatasetInfo,
    ModelInfo,
    PolicyInfo,
    SplitHashes,
    Status,
    ThreatModelInfo,
    VariantResult,
)
from audit.core.serde import to_data
from audit.core.stats import expected_calibration_error
from audit.core.version import __version__
from audit.engine.context import Context
from audit.engine.evidence import run_gaps
from audit.engine.judge import verdict
from audit.frameworks.controls import editions, nist_status, not_measured_threats
from audit.models.adapters import unwrap


def threat_model(config) -> ThreatModelInfo:
    tm, a = config.threat_model, config.attacks
    knowledge = {"white-box": "white-box: architecture, weights and gradients known to the attacker",
                 "black-box": "black-box: the attacker only queries the model; the audit's white-box attacks are "
                              "stronger, so its numbers bound this attacker from below"}[tm.knowledge]
    return ThreatModelInfo(
        declared=tm.declared, name=tm.label(), norm=a.norm.value, eps=tm.eps, knowledge=knowledge,
        goal="integrity violation: untargeted misclassification",
        capability=(f"testing-data control: each test input perturbed within the {a.norm.value} eps-ball"
                    + (f" of radius {tm.eps:g}" if tm.declared else " of each eps of the grid")
                    + ", inside the valid input range"),
        labels="attacks and scoring use the true labels",
        reference="NIST AI 100-2 §2.1-2.2.1 (NISTAML.022 evasion)")


def environment(device: torch.device) -> dict[str, str]:
    import art
    import cleanlab
    env = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
           "adversarial-robustness-toolbox": art.__version__, "cleanlab": cleanlab.__version__,
           "numpy": np.__version__, "advaudit": __version__, "device": str(device)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def variant_result(ctx: Context, name: str, findings=()) -> VariantResult:
    v = ctx.variants[name]
    try:
        ok = ctx.clean_correct(name)
        clean, bits = Accuracy.of(ok), pack_bits(ok)
        ece = expected_calibration_error(torch.softmax(ctx.get(TestLogits, name), 1).amax(1).numpy(), ok)
    except Exception:  # noqa: BLE001 - the clean_accuracy finding carries the error
        clean, bits, ece = None, "", None
    grid = ctx.computed(RobustnessGrid, name)
    rob = next((f.details for f in findings if f.check == Robustness.id and f.variant == name and f.details), None)
    points = rob.points if rob is not None else (grid.points if grid else ())  # the worst case over everything run
    st = v.train_stats
    return VariantResult(name=name, description=v.description, candidate=name == ctx.config.candidate,
                         clean_accuracy=clean, robustness=points, correct_bits=bits,
                         train_seconds=st.seconds if st else None, train_epochs=st.epochs if st else None,
                         train_example_passes=st.example_passes if st else None, ece=ece)


def mark_best(variants, findings, policy):
    """Flag the best variant under the policy: every variant-scoped threshold met (pass or warn), then the highest
    worst-case robust accuracy at the robustness threshold's eps, then the highest clean accuracy."""
    t = policy.thresholds.get(Robustness.id)

    def meets(v) -> bool:
        own = [f for f in findings if f.variant == v.name and f.threshold is not None]
        return bool(own) and all(f.status in (Status.PASS, Status.WARN) for f in own)

    def score(v):
        at = [p.robust_accuracy for p in v.robustness if p.attack == WORST_CASE and t is not None
              and t.eps is not None and same_eps(p.eps, t.eps)]
        return (at[0] if at else -1.0, v.clean_accuracy.value if v.clean_accuracy else -1.0)
    eligible = [v for v in variants if meets(v)]
    if not eligible:
        return variants
    best = max(eligible, key=score).name
    return tuple(dataclasses.replace(v, best=v.name == best) for v in variants)


def residual_risk(findings, variants, candidate: str, not_measured, threat=None) -> tuple[str, ...]:
    """Plain statements of what risk remains for the candidate after the audit's mitigations."""
    out = []
    v = next((v for v in variants if v.name == candidate), None)
    worst = [p for p in (v.robustness if v else ()) if p.attack == WORST_CASE]
    at_threat = [p for p in worst if threat is not None and threat.declared and same_eps(p.eps, threat.eps)]
    if at_threat:
        p = at_threat[0]
        out.append(f"Under the declared threat model ({threat.name}; {threat.knowledge.split(':')[0]}), the "
                   f"candidate '{candidate}' misclassifies {1 - p.robust_accuracy:.1%} of test points "
                   f"(95% CI {1 - p.ci_high:.1%}-{1 - p.ci_low:.1%}).")
    elif worst:
        top = worst[-1]
        out.append(f"No threat model was declared. Under white-box attack at {top.norm} eps {top.eps:g} (the "
                   f"largest tested), the candidate '{candidate}' misclassifies {1 - top.robust_accuracy:.1%} of "
                   f"test points (95% CI {1 - top.ci_high:.1%}-{1 - top.ci_low:.1%}).")
    if v and v.clean_accuracy:
        c = v.clean_accuracy
        out.append(f"Without attack it misclassifies {1 - c.value:.1%} of test points "
                   f"(95% CI {1 - c.ci_high:.1%}-{1 - c.ci_low:.1%}).")
    for f in findings:
        check = CHECKS.get(f.check)
        sentence = check.residual_risk(f) if check is not None else ""
        if sentence:
            out.append(sentence)
    bad = [f.id for f in findings if f.gating and f.status in (Status.FAIL, Status.ERROR)]
    if bad:
        out.append(f"Gating findings not met: {', '.join(bad)}.")
    out.append(f"{len(not_measured)} threat classes were not measured (see 'Not measured'); their risk is unknown, "
               f"not zero.")
    return tuple(out)


IN_MEMORY_DATA = "in-memory arrays"  # the name audit.run gives arrays (audit.data.sources.from_arrays' default)


def recorded_config(ctx: Context):
    """The config as results.json and the bundle's config.json record it: for an in-memory model given without a
    factory, no model factory (the config's default names a model that was not audited)."""
    config = ctx.config
    if ctx.setup.trainable is False:
        return dataclasses.replace(config, model=dataclasses.replace(config.model, factory="", kwargs={}))
    return config


def model_info(ctx: Context) -> ModelInfo:
    """What was audited: a model from the config names its factory (none for an archive); an in-memory model
    (``audit.run(model=...)``) names only the factory given with it, never the config's default, and its class."""
    config, model = ctx.config, ctx.variants["baseline"].model
    in_memory = ctx.setup.trainable is not None
    factory = "" if config.model.archive or (in_memory and not ctx.setup.trainable) else config.model.factory
    cls = type(unwrap(model))
    return ModelInfo(factory=factory, kwargs=dict(config.model.kwargs) if factory else {},
                     source=ctx.user_model.source, file_sha256=ctx.user_model.file_sha256,
                     parameters=int(sum(p.numel() for p in model.parameters())), architecture=cls.__name__,
                     model_class=f"{cls.__module__}.{cls.__qualname__}")


def assemble(ctx: Context, findings, seconds: float) -> AuditResult:
    config, policy, data = ctx.config, ctx.policy, ctx.data
    variants = mark_best(tuple(variant_result(ctx, name, findings) for name in ctx.variants), findings, policy)
    hashes = data.sha256()
    result = AuditResult(
        schema_version=SCHEMA_VERSION,
        tool={"name": "advaudit", "version": __version__},
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        verdict=verdict(findings, gaps := run_gaps(ctx, findings)), evidence_gaps=gaps, candidate=config.candidate,
        dataset=DatasetInfo(name=data.name, kind=data.kind, n_train=int(data.x_train.shape[0]),
                            n_test=int(data.x_test.shape[0]), n_test_full=data.n_test_full,
                            max_test=config.data.max_test, num_classes=data.num_classes,
                            input_shape=tuple(data.input_shape), clip=tuple(float(c) for c in data.clip),
                            class_names=tuple(data.class_names), sha256=SplitHashes(**hashes),
                            source=data.name if data.name == IN_MEMORY_DATA else config.data.source, lazy=data.lazy,
                            preprocessing=data.preprocessing, feature_names=tuple(data.feature_names)),
        model=model_info(ctx),
        policy=PolicyInfo(name=policy.name, version=policy.version, sha256=policy.sha256, source=policy.source,
                          thresholds={k: t.describe() for k, t in policy.thresholds.items()},
                          purpose=policy.evidence.purpose, evidence=policy.evidence.describe()),
        config=to_data(recorded_config(ctx)), environment=environment(ctx.device), variants=variants, findings=findings,
        nist=(), threat_model=threat_model(config),
        reviewer=to_data(config.reviewer), frameworks=editions(), duration_seconds=round(seconds, 2))
    not_measured = not_measured_threats(result)  # the framework facts read the result: threats, then claims
    result = dataclasses.replace(result, not_measured=not_measured, residual_risk=residual_risk(
        findings, variants, config.candidate, not_measured, threat_model(config)))
    return dataclasses.replace(result, nist=nist_status(result))
