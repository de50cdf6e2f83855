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

from attacks import ATTACKS
from audit.checks import CHECKS
from audit.checks.art_agreement import ArtAgreement
from audit.checks.base import RunCheck, VariantCheck
from audit.checks.deployments import Deployments
from audit.checks.label_issues import LabelIssues
from audit.engine.context import Context
from audit.engine.plan import enabled_checks, execution_order
from audit.engine.record import PASS_WORTH
from audit.engine.variant_recipe import MAX_HOLDOUT

SURVIVING = 0.6        # share of an early-stopping attack's bound that is spent (points broken early stop)
CHAINED = 0.5          # share of the test points a chained attack after the first still attacks
FIXED_SECONDS = 6.0    # imports, cleanlab, Datalab, report rendering and the bundle
MONITOR_STEPS = 10     # the held-out PGD that picks the best epoch
FIXED_STAGE = "libraries, cleanlab, reports, bundle"


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


# Seconds per row of the demo's small CNN on one CPU core (its calibration on the 2-core CI-class machine, then
# each price fitted so that the plan's stage shares match the stage shares of seven recorded demo runs): a real
# run's ETA prices its plan at these, without calibrating, and rescales it by the run's own pace (only the ratios
# matter). The gradient and forward rows are what audit/engine/record.py prices the counted passes at.
REFERENCE = Costs(train_row=1.4e-4, grad_row=PASS_WORTH[0], forward_row=PASS_WORTH[1], small_forward_row=1.0e-4,
                  corruption_call=1.5, art_grad_row=7.0e-4, art_query_row=1.3e-4)


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
    model = ctx.models.build_model().to(ctx.device) if not ctx.user_model.pretrained else \
        ctx.models.wrap(ctx.user_model.module)
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
    return ArtAgreement.id in enabled_checks(config)


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
    """(input-gradient passes, forward passes) per attacked point of one attack at one eps (its spec's bound)."""
    spec = ATTACKS[attack]
    return spec.cost(spec.make(**cfg.attacks.params(attack)))


class Sheet:
    """The estimate being written: what a check's ``cost`` hook reads (config, sizes, costs) and ``add``s to."""

    def __init__(self, ctx: Context, costs: Costs):
        self.config, self.costs = ctx.config, costs
        self.n_train, self.n_test = int(ctx.data.x_train.shape[0]), int(ctx.data.x_test.shape[0])
        self.trainable = ctx.setup.trainable if ctx.setup.trainable is not None else True
        self.stages: list[StageEstimate] = []

    def add(self, name: str, fb: float = 0.0, fwd: float = 0.0, *, train: bool = False,
            seconds: float | None = None, fwd_cost: float | None = None) -> None:
        c = self.costs
        s = seconds if seconds is not None else (fb * (c.train_row if train else c.grad_row)
                                                 + fwd * (fwd_cost or c.forward_row))
        self.stages.append(StageEstimate(name, fb, fwd, s))

    def attack_sweep(self) -> tuple[float, float, float]:
        """(input-gradient passes, forward passes, seconds per forward row) of every attack at every eps on the
        test set of one variant."""
        a = self.config.attacks
        fb = fwd = 0.0
        for attack in a.attacks:
            g, f = _attack_bound(self.config, attack)
            share = CHAINED if (attack in a.chain and a.chain.index(attack) > 0) else 1.0
            spent = (SURVIVING if a.early_stop else 1.0) * share * self.n_test * len(a.eps)
            fb, fwd = fb + g * spent, fwd + f * spent
        scored = any(ATTACKS[x].score_based for x in a.attacks)
        return fb, fwd, self.costs.small_forward_row if scored else self.costs.forward_row


def _training_stages(ctx: Context, sheet: Sheet) -> None:
    c, n_tr = ctx.config, sheet.n_train
    if not (ctx.user_model is not None and ctx.user_model.pretrained):
        sheet.add("train baseline", c.training.epochs * n_tr, train=True)
    for x in c.defences:
        if x.weights:
            continue
        hold = int(min(MAX_HOLDOUT, round(x.holdout * n_tr)))
        per_row = {"none": 1, "pgd": x.steps + 1, "trades": x.steps + 2, "ibp": 3}.get(x.method, 2)
        sheet.add(f"train {x.name}", c.training.epochs * ((n_tr - hold) * per_row + hold * MONITOR_STEPS), train=True)


def estimate(ctx: Context, costs: Costs) -> list[StageEstimate]:
    """Passes and seconds of every stage the run will have: the trainings, then each enabled check's own
    estimate (its ``cost`` hook), per variant and then once, the deployments' fine-tuning and the fixed cost."""
    c, sheet = ctx.config, Sheet(ctx, costs)
    enabled = [CHECKS[k] for k in CHECKS if k in enabled_checks(c)]
    _training_stages(ctx, sheet)
    for v in ["baseline"] + [x.name for x in c.defences]:
        for check in enabled:
            if isinstance(check, VariantCheck):
                check.cost(sheet, v)
    for check in enabled:
        if isinstance(check, RunCheck):
            check.cost(sheet)
    for x in c.deployments:
        if x.method == "prune" and x.finetune_epochs:
            sheet.add(f"fine-tune deployment {x.name}", x.finetune_epochs * sheet.n_train, train=True)
    sheet.add(FIXED_STAGE, seconds=FIXED_SECONDS)
    return sheet.stages


def run_plan(ctx: Context) -> dict[str, float]:
    """The planned work of each top-level stage of the run (seconds at the ``REFERENCE`` costs) by its stage name
    (what audit/engine/record.py's ETA counts as done when that stage ends): an indented line of the estimate
    counts in the stage above it, a note in parentheses is dropped, the deployments' fine-tuning counts in their
    check, and the fixed work (libraries, reports) under ""."""
    work: dict[str, float] = {}
    key = ""
    for s in estimate(ctx, REFERENCE):
        if s.name == FIXED_STAGE:
            key = ""
        elif s.name.startswith("fine-tune deployment "):
            key = f"check {Deployments.id}"
        elif not s.name.startswith(" "):
            key = s.name.split(" (")[0]
        work[key] = work.get(key, 0.0) + s.seconds
    return work


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
                                                                     if LabelIssues.id in enabled_checks(c) else 0)
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
