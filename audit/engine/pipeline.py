"""config -> Context -> measurements -> findings -> AuditResult. The one pipeline of every command."""
from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from pathlib import Path
from typing import cast

from audit.checks import CHECKS
from audit.checks.base import Check, RunCheck, Scope, VariantCheck
from audit.config import AuditConfig
from audit.config.policy import Policy, load_policy
from audit.core.errors import UsageError
from audit.core.metrics import same_eps
from audit.core.result import AuditResult, Finding, Measurement
from audit.data.sources import BUILTIN, load_data
from audit.data.splits import Splits
from audit.data.subsample import subsample_test
from audit.engine.assemble import assemble
from audit.engine.context import Context, Prepared, make_context
from audit.engine.evidence import check_rule
from audit.engine.execution import make_executor
from audit.engine.judge import judge
from audit.engine.models import Models, factory_model, wrap_model
from audit.engine.plan import enabled_checks, execution_order
from audit.engine.preflight import (
    check_batch_sizes,
    check_certified_training,
    check_eps,
    check_model,
    check_pred_probs,
    eval_batch,
)
from audit.engine.record import Recorder
from audit.engine.run_setup import RunSetup, pick_device
from audit.engine.variants import train_variants
from audit.models.loading import LoadedModel, load_user_model

log = logging.getLogger(__name__)


def measure_safely(check: Check, ctx: Context, variant: str | None) -> Measurement:
    """Run one check (on ``variant`` for a variant-scope check, once for a run-scope one, ``variant`` None); an
    exception becomes an error measurement and the run continues. A check that does not apply (its own reason
    first) or whose required checks did not measure anything is skipped, saying why."""
    why = check.not_applicable(ctx)
    if not why and isinstance(check, VariantCheck) and variant is not None:
        why = check.not_applicable_to(ctx, variant)
    if why:
        return Measurement(check=check.id, variant=variant, skipped=why)
    for needed in check.requires:   # a variant check's requirement is measured on the same variant
        need = needed.id
        m = ctx.measurement(need, variant if getattr(needed, "scope", None) is Scope.VARIANT else None)
        if m is None or m.error is not None or m.skipped is not None:
            why = "it was not enabled" if m is None else ("it failed" if m.error else "it was skipped")
            return Measurement(check=check.id, variant=variant, skipped=f"needs the {need} check's result ({why})")
    try:
        if isinstance(check, VariantCheck):
            return check.measure(ctx, cast(str, variant))   # the engine gives a variant check its variant
        return cast(RunCheck, check).measure(ctx)            # every other check is a run check
    except Exception as e:  # noqa: BLE001 - isolation is the point
        log.warning("check %s%s failed: %s", check.id, f" on {variant}" if variant else "", e)
        log.debug("%s", traceback.format_exc())
        return Measurement(check=check.id, variant=variant, error=f"{type(e).__name__}: {e}")


def check_policy_fits(policy: Policy, config: AuditConfig) -> None:
    """A threshold at an eps the grid does not contain could never be judged: say so before any work."""
    enabled = enabled_checks(config)
    grid = config.attacks.eps
    assert grid is not None   # AuditConfig.__post_init__ resolves it
    for check_id, t in policy.thresholds.items():
        if t.eps is not None and check_id in enabled and not any(same_eps(t.eps, e) for e in grid):
            raise UsageError(f"attacks.eps: the policy {policy.name!r} judges {check_id} at eps {t.eps:g}, which "
                             f"is not in the grid {list(grid)}; add it or use another policy")


def prepare(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None,
            recorder: Recorder | None = None, model: LoadedModel | None = None) -> Prepared:
    """Load policy, data and model and check them against each other: every bad-input error happens here,
    before anything is trained or written; then start the executor. ``model``: an already loaded model (the
    Python API's in-memory one)."""
    recorder = recorder or Recorder()
    with recorder.stage("prepare (policy, data, model, pre-flight)"):
        return _prepare(config, data, policy, recorder, model)


def _prepare(config, data, policy, recorder, model=None) -> Prepared:
    base_dir = Path(config.base_dir) if config.base_dir else Path.cwd()
    policy = (policy or load_policy(config.policy)).for_threat(config.threat_model)
    user = model or load_user_model(config.model, base_dir)  # before the data: a bad model file fails unread
    data = (subsample_test(data, config.data.max_test, config.seed) if data is not None
            else load_data(config.data, config.input, base_dir, config.seed))
    check_eps(config.attacks.eps, config.attacks.norm, data)  # "8 exceeds the input range" before the policy's eps
    check_policy_fits(policy, config)
    check_rule(policy.evidence)   # [evidence] names known checks (the API and CLI check it even earlier)
    for check_id in enabled_checks(config):  # each check refuses settings this data cannot support
        CHECKS[check_id].preflight(config, data)
    device = pick_device(config.device)
    recorder.device = device
    module = user.module if user.pretrained else factory_model(config)
    assert module is not None   # a pretrained model is loaded with its module
    checked_model = wrap_model(module, config, data, device, recorder.counter)  # the model pre-flight runs on the data
    explicit = bool(config.data.num_classes or config.data.class_names or config.data.source in BUILTIN
                    or config.data.source in ("folder", "table"))
    data, warnings = check_model(checked_model, data, device, explicit_classes=explicit,
                                 was_training=user.was_training, pretrained=user.pretrained,
                                 batch_size=eval_batch(config))
    check_batch_sizes(checked_model, data, device, {"attacks.batch_size": config.attacks.batch_size,
                                                    "training.batch_size": config.training.batch_size})
    check_certified_training(lambda: checked_model if not config.model.factory else wrap_model(
        factory_model(config), config, data, device, recorder.counter), config.defences, config.attacks.norm, data,
        device)   # the defences train the factory's model where there is one
    pred_probs = check_pred_probs(config.label_issues, data)
    executor = make_executor(config, recorder)  # a cluster that cannot be reached fails here, before work
    recorder.executor = executor.name
    import art  # noqa: F401  # every run records ART's version (assemble.environment): its one-time import
    # (~1.2 s) is the set-up's, not the first check's that happens to touch ART
    setup = RunSetup(config=config, policy=policy, data=data, device=device, user_model=user,
                     user_pred_probs=pred_probs, warnings=tuple(warnings),
                     trainable=None if model is None else model.trainable)
    return Prepared(setup, Models(setup, recorder.counter), executor, recorder)


def plan_progress(prepared: Prepared) -> None:
    """The run's planned work per stage (the dry run's formulas, no calibration: audit/engine/dryrun.py
    ``run_plan``) for the progress lines' ETA; a plan that cannot be made costs the ETA only."""
    from audit.engine.dryrun import run_plan
    try:
        plan = run_plan(make_context(prepared.setup, executor=prepared.executor, recorder=prepared.recorder,
                                     models=prepared.models))
    except Exception as e:  # noqa: BLE001 - the ETA is a nicety, never a reason to stop the run
        log.debug("no progress plan: %s: %s", type(e).__name__, e)
        plan = None
    prepared.recorder.plan(plan)


def build_context(prepared: Prepared, train: bool = True) -> Context:
    """Train the variants (audit/engine/variants.py), then the run's context, complete (``train=False``: a dry
    run's, with no variants)."""
    variants, warnings = train_variants(prepared) if train else ({}, ())
    return make_context(prepared.setup, variants, executor=prepared.executor, recorder=prepared.recorder,
                        models=prepared.models, warnings=warnings)


def run_checks(ctx: Context) -> tuple[Finding, ...]:
    """Every enabled check on every variant (variant scope) or once (run scope), in dependency order; the
    findings in registry order. Only the candidate's and the run-scope findings are gating, and those of another
    variant that show the run's measuring broken (``Check.gates_from_any_variant``: C17)."""
    config, policy = ctx.config, ctx.policy
    enabled = enabled_checks(config)
    judged: dict = {}
    for check_id in execution_order(enabled):
        check = CHECKS[check_id]
        targets: list[str | None] = list(ctx.variants) if check.scope is Scope.VARIANT else [None]
        for variant in targets:
            with ctx.stage(f"check {check_id}" + (f":{variant}" if variant else "")):
                m = measure_safely(check, ctx, variant)
            ctx.measurements[check_id if variant is None else f"{check_id}:{variant}"] = m
            gating = variant is None or variant == config.candidate or check.gates_from_any_variant(m)
            judged[(check_id, variant)] = judge(m, check, policy.thresholds.get(check_id), gating)
    return tuple(judged[k] for c in CHECKS if c in enabled for k in judged if k[0] == c)


def run_audit(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None) -> AuditResult:
    """Train the variants, run every enabled check, judge and assemble the immutable result (with its run
    record)."""
    recorder = Recorder()
    result, _ = run_audit_with_context(config, data, policy, recorder)
    return dataclasses.replace(result, run_record=recorder.record())


def run_audit_with_context(config: AuditConfig, data: Splits | None = None, policy: Policy | None = None,
                           recorder: Recorder | None = None,
                           model: LoadedModel | None = None) -> tuple[AuditResult, Context]:
    """The result without its run record (whoever writes the outputs sets it once, after timing the rendering:
    audit/api/outputs.py), and the context (trained variants, data) the evidence bundle is made from.
    ``recorder`` times the stages (its start is the command's start when the CLI passes one)."""
    recorder = recorder or Recorder()
    start = time.perf_counter()
    prepared = prepare(config, data, policy, recorder, model)
    try:
        plan_progress(prepared)
        ctx = build_context(prepared)
        findings = run_checks(ctx)
        with ctx.stage("assemble the result"):
            result = assemble(ctx, findings, time.perf_counter() - start)
    finally:
        recorder.counter.detach()
        prepared.executor.close()  # a model handed in by the caller leaves without advaudit's hooks
    return result, ctx
