"""config -> Context -> measurements -> findings -> AuditResult. The one pipeline of every command."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import platform
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from audit import __version__
from audit.checks import CHECKS
from audit.checks.clean_accuracy import clean_correct
from audit.config import AuditConfig
from audit.context import Context, input_wrapper, pick_device
from audit.controls import coverage, editions, nist_status
from audit.data import Splits
from audit.errors import UsageError
from audit.model_io import InputAffine, load_user_model
from audit.preflight import check_eps, check_model
from audit.sources import BUILTIN, load_data
from audit.evaluation import WORST_CASE, Accuracy, pack_bits
from audit.judge import judge, verdict
from audit.policy import Policy, load_policy
from audit.result import SCHEMA_VERSION, AuditResult, Measurement, Status, VariantResult
from audit.serde import to_data
from audit.stats import expected_calibration_error

log = logging.getLogger(__name__)

THREAT_MODEL = {
    "knowledge": "white-box: architecture, weights and gradients known to the attacker",
    "goal": "integrity violation: untargeted misclassification",
    "capability": "testing-data control: each test input perturbed within the eps-ball of the norm, "
                  "inside the valid input range",
    "labels": "attacks and scoring use the true labels",
    "reference": "NIST AI 100-2 §2.1-2.2.1 (NISTAML.022 evasion)",
}


def environment(device: torch.device) -> dict[str, str]:
    import art
    import cleanlab
    env = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
           "adversarial-robustness-toolbox": art.__version__, "cleanlab": cleanlab.__version__,
           "numpy": np.__version__, "advaudit": __version__, "device": str(device)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def measure_safely(check, ctx: Context, variant: str | None) -> Measurement:
    """Run one check; an exception becomes an error measurement and the run continues."""
    try:
        return check.measure(ctx, variant)
    except Exception as e:  # noqa: BLE001 - isolation is the point
        log.warning("check %s%s failed: %s", check.id, f" on {variant}" if variant else "", e)
        log.debug("%s", traceback.format_exc())
        return Measurement(check=check.id, variant=variant, error=f"{type(e).__name__}: {e}")


def _variant_result(ctx: Context, name: str) -> VariantResult:
    v = ctx.variants[name]
    try:
        ok = clean_correct(ctx, name)
        clean, bits = Accuracy.of(ok), pack_bits(ok)
        ece = expected_calibration_error(torch.softmax(ctx.test_logits(name), 1).amax(1).numpy(), ok)
    except Exception:  # noqa: BLE001 - the clean_accuracy finding carries the error
        clean, bits, ece = None, "", None
    points = ctx.cached_only(("robustness", name))
    st = v.train_stats
    return VariantResult(name=name, description=v.description, candidate=name == ctx.config.candidate,
                         clean_accuracy=clean, robustness=points.points if points else (), correct_bits=bits,
                         train_seconds=st.seconds if st else None, train_epochs=st.epochs if st else None,
                         train_example_passes=st.example_passes if st else None, ece=ece)


def mark_best(variants, findings, policy: Policy):
    """Flag the best variant under the policy: every variant-scoped gate met (pass or warn), then the highest
    worst-case robust accuracy at the robustness gate's eps, then the highest clean accuracy."""
    gate = policy.gates.get("robustness")

    def meets(v) -> bool:
        own = [f for f in findings if f.variant == v.name and f.gate is not None]
        return bool(own) and all(f.status.value in ("pass", "warn") for f in own)

    def score(v):
        at = [p.robust_accuracy for p in v.robustness if p.attack == WORST_CASE and gate is not None
              and gate.eps is not None and abs(p.eps - gate.eps) < 1e-9]
        return (at[0] if at else -1.0, v.clean_accuracy.value if v.clean_accuracy else -1.0)
    eligible = [v for v in variants if meets(v)]
    if not eligible:
        return variants
    best = max(eligible, key=score).name
    return tuple(dataclasses.replace(v, best=v.name == best) for v in variants)


def residual_risk(findings, variants, candidate: str, not_measured) -> tuple[str, ...]:
    """Plain statements of what risk remains for the candidate after the audit's mitigations."""
    out = []
    v = next((v for v in variants if v.name == candidate), None)
    worst = [p for p in (v.robustness if v else ()) if p.attack == WORST_CASE]
    if worst:
        top = worst[-1]
        out.append(f"Under white-box attack at {top.norm} eps {top.eps:g} (the largest tested), the candidate "
                   f"'{candidate}' misclassifies {1 - top.robust_accuracy:.1%} of test points "
                   f"(95% CI {1 - top.ci_high:.1%}-{1 - top.ci_low:.1%}).")
    if v and v.clean_accuracy:
        c = v.clean_accuracy
        out.append(f"Without attack it misclassifies {1 - c.value:.1%} of test points "
                   f"(95% CI {1 - c.ci_high:.1%}-{1 - c.ci_low:.1%}).")
    for f in findings:
        if f.check == "label_issues" and "label_issue_rate" in f.metrics:
            out.append(f"{f.metrics['label_issue_rate']:.1%} of training labels are suspected errors and remain "
                       f"in the training data unless cleaned.")
        if f.check == "backdoor" and "flagged_rows" in f.metrics:
            test = f.details.get("selftest")
            evidence = (f"; its self-test found {test['detectors']['screen']['recall']:.0%} of a planted "
                        f"{test['rate']:.0%} backdoor, so a backdoor it misses remains possible") if test else ""
            out.append(f"The backdoor screen flagged {int(f.metrics['flagged_rows'])} training rows for review"
                       f"{evidence}.")
    bad = [f.id for f in findings if f.gating and f.status.value in ("fail", "error")]
    if bad:
        out.append(f"Gating findings not met: {', '.join(bad)}.")
    out.append(f"{len(not_measured)} threat classes were not measured (see 'Not measured'); their risk is unknown, "
               f"not zero.")
    return tuple(out)


def check_policy_fits(policy: Policy, config: AuditConfig) -> None:
    """A gate at an eps the grid does not contain could never be judged: say so before any work."""
    enabled = config.enabled_checks()
    for check_id, gate in policy.gates.items():
        if gate.eps is not None and check_id in enabled and \
                not any(abs(gate.eps - e) < 1e-9 for e in config.attacks.eps):
            raise UsageError(f"attacks.eps: the policy {policy.name!r} gates {check_id} at eps {gate.eps:g}, which "
                             f"is not in the grid {list(config.attacks.eps)}; add it or use another policy")


def prepare(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None,
            base_dir: Path | None = None) -> Context:
    """Load policy, data and model and check them against each other: every bad-input error happens here,
    before anything is trained or written."""
    spec = config.policy
    if spec != "default" and base_dir is not None and not Path(spec).is_absolute():
        spec = str(Path(base_dir) / spec)  # a policy path in a config is relative to the config file
    policy = policy or load_policy(spec)
    data = data or load_data(config.data, config.input, base_dir or Path.cwd(), config.seed)
    check_eps(config.attacks.eps, config.attacks.norm, data)
    check_policy_fits(policy, config)
    user = load_user_model(config.model, base_dir)
    ctx = Context(config=config, policy=policy, data=data, device=pick_device(config.device), base_dir=base_dir,
                  user_model=user)
    probe = input_wrapper(user.module, config, data).to(ctx.device) if user.pretrained else ctx.build_model()
    explicit = bool(config.data.num_classes or config.data.class_names or config.data.source in BUILTIN
                    or config.data.source in ("folder", "table"))
    ctx.data, ctx.warnings = check_model(probe, data, ctx.device, explicit_classes=explicit,
                                         was_training=user.was_training)
    return ctx


def run_audit(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None,
              base_dir: Path | None = None) -> AuditResult:
    """Train the variants, run every enabled check, judge and assemble the immutable result."""
    return run_audit_with_context(config, data, policy, base_dir)[0]


def run_audit_with_context(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None,
                           base_dir: Path | None = None) -> tuple[AuditResult, Context]:
    """``run_audit``, also returning the context (trained variants, data) the evidence bundle is made from."""
    start = time.perf_counter()
    ctx = prepare(config, data, policy, base_dir)
    policy, data = ctx.policy, ctx.data
    ctx.train_variants()
    findings = []
    for check_id in config.enabled_checks():
        check = CHECKS[check_id]
        gate = policy.gates.get(check_id)
        targets = list(ctx.variants) if check.scope == "variant" else [None]
        for variant in targets:
            gating = variant is None or variant == config.candidate
            findings.append(judge(measure_safely(check, ctx, variant), check, gate, gating))
    findings = tuple(findings)
    variants = mark_best(tuple(_variant_result(ctx, name) for name in ctx.variants), findings, policy)
    measured = {f.check for f in findings if f.status not in (Status.SKIPPED, Status.ERROR)}
    not_measured = tuple({k: v for k, v in t.items() if k != "unless_check"} for t in coverage()["not_measured"]
                         if t.get("unless_check") not in measured)
    model = ctx.variants["baseline"].model
    result = AuditResult(
        schema_version=SCHEMA_VERSION,
        tool={"name": "advaudit", "version": __version__},
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        verdict=verdict(findings), candidate=config.candidate,
        dataset={"name": data.name, "kind": data.kind, "n_train": int(data.x_train.shape[0]),
                 "n_test": int(data.x_test.shape[0]), "num_classes": data.num_classes,
                 "input_shape": list(data.input_shape), "clip": list(data.clip),
                 "class_names": list(data.class_names), "sha256": data.sha256(), "source": config.data.source,
                 "lazy": data.lazy, "preprocessing": data.preprocessing,
                 "feature_names": list(data.feature_names)},
        model={"factory": "" if config.model.archive else config.model.factory, "kwargs": dict(config.model.kwargs),
               "source": ctx.user_model.source, "file_sha256": ctx.user_model.file_sha256,
               "parameters": int(sum(p.numel() for p in model.parameters())),
               "architecture": type(model.model if isinstance(model, InputAffine) else model).__name__},
        policy={"name": policy.name, "version": policy.version, "sha256": policy.sha256, "source": policy.source,
                "gates": {k: g.describe() for k, g in policy.gates.items()}},
        config=to_data(config), environment=environment(ctx.device), variants=variants, findings=findings,
        nist=nist_status(findings), not_measured=not_measured, threat_model=THREAT_MODEL,
        residual_risk=residual_risk(findings, variants, config.candidate, not_measured),
        reviewer=to_data(config.reviewer), frameworks=editions(),
        duration_seconds=round(time.perf_counter() - start, 2))
    return result, ctx
