"""``advaudit run --dry-run``: the resolved plan and what it will cost, without training or writing anything.

The plan is what the run would do: the checks in execution order, the attacks with their settings, the eps grid,
the variants (trained or supplied), the deployments and the units an executor runs. The estimate counts the model
passes of every stage from the settings (the formulas follow what the run record counts: training rows x epochs x
the adversary's steps, folds x fold epochs, attacks x eps x steps x test points, probes, corruptions) and prices
them with a short calibration on the user's model and data: seconds per row of a training step at the training
batch, of an input-gradient pass at the attack batch, of a forward pass at the evaluation batch and at the small
batches random searches and ART's queries run at, and of the corruptions per test row. Attacks that stop early or
run on the points earlier attacks left robust cost less than their bound: a fixed share (``SURVIVING``) is assumed,
so the estimate is a planning figure, not a promise (bench/demo_walltime.py prints it beside the measured time).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from attacks import ATTACK_FAMILY
from audit.engine.context import Context
from audit.engine.plan import enabled_checks, execution_order
from audit.engine.variant_recipe import MAX_HOLDOUT

SURVIVING = 0.6        # share of an early-stopping attack's bound that is spent (points broken early stop)
CHAINED = 0.5          # share of the test points a chained attack after the first still attacks
FIXED_SECONDS = 6.0    # imports, cleanlab, Datalab, report rendering and the bundle
CORRUPTION_WORK = 3.0  # corrupting a row costs about two forward passes of a small model besides the forward
MONITOR_STEPS = 10     # the held-out PGD that picks the best epoch


@dataclass(frozen=True)
class Costs:
    """Seconds per row, measured on the user's model."""

    train_row: float
    grad_row: float
    forward_row: float
    small_forward_row: float
    corruption_call: float     # one corruption sweep's fixed cost (35 corruptions x severities on a few rows)
    art_grad_row: float        # ART's PGD, per point and step
    art_query_row: float       # ART's Square, per point and query


@dataclass(frozen=True)
class StageEstimate:
    name: str
    fwd_bwd: float
    fwd: float
    seconds: float


def _timed(fn, reps: int = 3) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def calibrate(ctx: Context) -> Costs:
    """A few passes of each kind on a fresh copy of the model (its weights are thrown away)."""
    from audit.methods.corruptions import corruption_errors
    d, c = ctx.data, ctx.config
    model = ctx.build_model().to(ctx.device) if not ctx.user_model.pretrained else ctx.wrap(ctx.user_model.module)
    n = int(d.x_test.shape[0])
    reps = -(-max(c.training.batch_size, c.attacks.batch_size, 16) // n)
    pool = torch.cat([d.x_test[:n]] * reps) if reps > 1 else d.x_test[:n]
    labels = torch.cat([d.y_test[:n]] * reps) if reps > 1 else d.y_test[:n]
    tb, ab, eb = min(c.training.batch_size, len(pool)), min(c.attacks.batch_size, len(pool)), \
        min(1024, c.attacks.batch_size, len(pool))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4) if params else None
    xt, yt = pool[:tb].to(ctx.device), labels[:tb].to(ctx.device)

    def train_step():
        model.train()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        if opt is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
    xa, ya = pool[:ab].to(ctx.device), labels[:ab].to(ctx.device)

    def grad_step():
        model.eval()
        x = xa.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(model(x), ya).backward()

    def forward(rows):
        def f():
            model.eval()
            with torch.no_grad():
                model(pool[:rows].to(ctx.device))
        return f
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        train_row, grad_row = _timed(train_step) / tb, _timed(grad_step) / ab
        forward_row, small_row = _timed(forward(eb)) / eb, _timed(forward(16), 5) / 16
        model.eval()
        rows = min(16, n)
        start = time.perf_counter()
        corruption_errors(model, d.x_test[:rows], d.y_test[:rows], clip=d.attack_clip, kind=d.kind, seed=c.seed,
                          device=ctx.device)
        corruption_call = time.perf_counter() - start
        art_grad, art_query = _art_costs(ctx, model, pool[:rows]) if _uses_art(c) else (0.0, 0.0)
    finally:
        model.load_state_dict(state)
        model.eval()
    return Costs(train_row, grad_row, forward_row, small_row, corruption_call, art_grad, art_query)


def _uses_art(config) -> bool:
    return "art_agreement" in enabled_checks(config)


def _art_costs(ctx: Context, model, x: torch.Tensor) -> tuple[float, float]:
    """ART's PGD per point-step and Square per point-query on ``x``, labelled with the model's own predictions and
    a budget too small to succeed, so that every point is attacked for every step and query."""
    from audit.methods.art_adapter import art_attack, art_classifier, one_hot
    with torch.no_grad():
        y = model(x.to(ctx.device)).argmax(1).cpu()
    clf = art_classifier(model, x.shape[1:], ctx.data.num_classes, ctx.data.attack_clip)
    norm, eps, steps, queries = ctx.config.attacks.norm.value, 1e-6, 5, 20
    labels = one_hot(y, ctx.data.num_classes)

    def pgd():
        art_attack("pgd", clf, eps=eps, norm=norm, params={"steps": steps}, batch_size=512).generate(
            x=x.numpy(), y=labels)

    def square():
        art_attack("square", clf, eps=eps, norm=norm, params={"queries": queries, "p_init": 0.8},
                   batch_size=512).generate(x=x.numpy(), y=labels)
    rows = x.shape[0]
    return _timed(pgd, 1) / (rows * steps), _timed(square, 1) / (rows * queries)


def _attack_bound(cfg, attack: str) -> tuple[float, float]:
    """(input-gradient passes, forward passes) per attacked point of one attack at one eps."""
    a, family = cfg.attacks, ATTACK_FAMILY[attack]
    targets = a.n_targets if attack.endswith("_t") else 1
    if family == "single":
        return 1.0, 0.0
    if family == "pgd":
        return float(a.pgd_steps * a.pgd_restarts * targets), 0.0
    if family == "apgd":
        return float(a.apgd_steps * a.apgd_restarts * targets), float(a.apgd_steps * a.apgd_restarts * targets)
    if family == "fab":
        return float(3 * a.fab_steps * a.fab_restarts * targets), float(a.fab_steps * a.fab_restarts * targets)
    return 0.0, float(a.square_queries * a.square_restarts)


def estimate(ctx: Context, costs: Costs) -> list[StageEstimate]:
    """Passes and seconds of every stage the run will have."""
    c, d = ctx.config, ctx.data
    n_tr, n_te = int(d.x_train.shape[0]), int(d.x_test.shape[0])
    enabled = enabled_checks(c)
    pretrained = ctx.user_model is not None and ctx.user_model.pretrained
    trainable = ctx.trainable if ctx.trainable is not None else True
    variants = ["baseline"] + [x.name for x in c.defences]
    out: list[StageEstimate] = []

    def add(name, fb=0.0, fwd=0.0, *, train=False, seconds=None, fwd_cost=None):
        s = seconds if seconds is not None else (fb * (costs.train_row if train else costs.grad_row)
                                                 + fwd * (fwd_cost or costs.forward_row))
        out.append(StageEstimate(name, fb, fwd, s))

    if not pretrained:
        add("train baseline", c.training.epochs * n_tr, train=True)
    for x in c.defences:
        if x.weights:
            continue
        hold = int(min(MAX_HOLDOUT, round(x.holdout * n_tr)))
        per_row = {"none": 1, "pgd": x.steps + 1, "trades": x.steps + 2}.get(x.method, 2)
        add(f"train {x.name}", c.training.epochs * ((n_tr - hold) * per_row + hold * MONITOR_STEPS), train=True)
    grid = len(c.attacks.eps)
    a = c.attacks
    for v in variants:
        if "robustness" in enabled:
            fb = fwd = 0.0
            for _i, attack in enumerate(a.attacks):
                g, f = _attack_bound(c, attack)
                share = CHAINED if (attack in a.chain and a.chain.index(attack) > 0) else 1.0
                spent = (SURVIVING if a.early_stop else 1.0) * share * n_te * grid
                fb, fwd = fb + g * spent, fwd + f * spent
            add(f"check robustness:{v}", fb, fwd + n_te, fwd_cost=costs.small_forward_row
                if any(ATTACK_FAMILY[x] == "score" for x in a.attacks) else costs.forward_row)
        if "attack_validity" in enabled:
            probe = min(a.probe_points, n_te)
            add(f"check attack_validity:{v}", probe * (3 * a.pgd_steps + 10), 0.0)
            sq = 0 if "square" in a.attacks else min(a.square_points, probe) * a.square_queries
            add(f"  validity probes (forward):{v}", 0.0, sq + 40 * probe, fwd_cost=costs.small_forward_row)
        if "art_agreement" in enabled:
            pts = min(a.art_crosscheck_points, n_te)
            small = min(64, pts)
            fb = pts * (1 + a.pgd_steps) + small * a.apgd_steps
            add(f"check art_agreement:{v}", fb, pts * 2.0, seconds=2 * fb * costs.grad_row + fb * costs.art_grad_row)
            if v == c.candidate:
                q = min(a.square_queries, 1000)
                add(f"  ART and native Square:{v}", 0.0, 2 * small * q,
                    seconds=small * q * (costs.art_query_row + costs.small_forward_row))
        if "calibration" in enabled:
            add(f"check calibration:{v}", n_te * 10, 2.0 * n_te)
        if "corruptions" in enabled:
            add(f"check corruptions:{v}", 0.0, 35.0 * n_te,
                seconds=costs.corruption_call + 35.0 * n_te * costs.forward_row * CORRUPTION_WORK)
        if "ood" in enabled:
            add(f"check ood:{v}", 0.0, 5.0 * n_te)
    li = c.label_issues
    if "label_issues" in enabled and li.method == "kfold" and trainable and not li.pred_probs:
        k = li.folds
        add(f"check label_issues ({k} folds + the self-test's {k})", 2 * k * li.epochs * n_tr * (k - 1) / k,
            2.0 * n_tr, train=True)
    if "backdoor" in enabled and trainable:
        add("check backdoor (self-test training)", (c.backdoor.selftest_epochs or c.training.epochs) * n_tr,
            2.0 * n_tr, train=True)
    if "retrain_cleaned" in enabled and li.retrain_cleaned and trainable:
        add("check retrain_cleaned", c.training.epochs * n_tr, train=True)
    for x in c.deployments:
        if x.method == "prune" and x.finetune_epochs:
            add(f"fine-tune deployment {x.name}", x.finetune_epochs * n_tr, train=True)
    add("libraries, cleanlab, reports, bundle", seconds=FIXED_SECONDS)
    return out


def plan_text(ctx: Context, stages: list[StageEstimate], costs: Costs, calibration_s: float) -> str:
    """The plan and the estimate as plain text (the CLI prints it)."""
    c = ctx.config
    a = c.attacks
    lines = [f"advaudit dry run: nothing is trained or written (calibration took {calibration_s:.1f} s)", "",
             f"data: {ctx.data.name}, {ctx.data.x_train.shape[0]} training and {ctx.data.x_test.shape[0]} test "
             f"rows, {ctx.data.num_classes} classes; device {ctx.device}; executor {c.execution.executor}",
             f"threat model: {c.threat_model.label()}; eps grid ({a.norm.value}): "
             + ", ".join(f"{e:g}" for e in a.eps),
             "variants: " + ", ".join(["baseline"] + [x.name for x in c.defences]) + f" (candidate {c.candidate})"]
    if c.deployments:
        lines.append("deployments: " + ", ".join(f"{x.name} ({x.method})" for x in c.deployments))
    lines.append("checks, in order: " + ", ".join(execution_order(enabled_checks(c))))
    lines.append("attacks:")
    lines += [f"  {x}: {a.describe(x)}" for x in a.attacks]
    units = sum(1 for s in stages if s.name.startswith("train ")) + (2 * c.label_issues.folds
                                                                     if "label_issues" in enabled_checks(c) else 0)
    lines.append(f"units an executor runs: {units} trainings and folds, plus one attack shard per variant")
    lines += ["", f"calibration: {costs.train_row * 1e3:.3f} ms per training row, {costs.grad_row * 1e3:.3f} ms per "
              f"input-gradient row, {costs.forward_row * 1e3:.3f} ms per forward row",
              "", f"{'stage':52s} {'fwd+bwd':>12s} {'fwd':>12s} {'seconds':>9s}"]
    lines += [f"{s.name[:52]:52s} {s.fwd_bwd:12,.0f} {s.fwd:12,.0f} {s.seconds:9.1f}" for s in stages]
    total = sum(s.seconds for s in stages)
    lines.append(f"{'estimate':52s} {sum(s.fwd_bwd for s in stages):12,.0f} {sum(s.fwd for s in stages):12,.0f} "
                 f"{total:9.1f}")
    lines.append(f"\nestimated wall time: {total:.0f} s ({total / 60:.1f} min) on {ctx.device}, "
                 f"{torch.get_num_threads()} threads")
    return "\n".join(lines)


def dry_run(ctx: Context) -> tuple[str, float]:
    """The plan text and the estimated seconds."""
    start = time.perf_counter()
    costs = calibrate(ctx)
    stages = estimate(ctx, costs)
    return plan_text(ctx, stages, costs, time.perf_counter() - start), sum(s.seconds for s in stages)
