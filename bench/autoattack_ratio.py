"""Our ``standard`` chain against the official AutoAttack (fra31/auto-attack as ``pyautoattack``) on the same
model, points, eps and settings, in one process, after a warm-up (issue 30).

Fixtures (trained here on the first run, cached under ``--cache``): the Madry et al. MNIST CNN on digits28 (sklearn's
digits upsampled to 28x28), adversarially trained with PGD at Linf 0.3 (advaudit's default recipe), and the same
network trained naturally. On each: APGD-CE (100 steps), APGD-T (100 steps, 9 targets), FAB-T (100 steps, 9
targets), Square (5,000 queries, p_init 0.8), each on the points every earlier stage left robust, AutoAttack's
``version='standard'`` settings. AutoAttack's stages are called as its ``run_standard_evaluation`` calls them (its
attack objects with its seeds, one batch of all robust points) so each stage is timed; ours run through
``attacks.ATTACKS`` as the audit's grid runs them (its channels-last rule; a bare model, so the pass counter's hooks
are absent: the forward twin works under them too, tests/attacks/test_inference.py). The two chains alternate stage
by stage. Prints per-stage seconds and ratios (AutoAttack / ours), the
robust accuracy of each and the points one breaks and the other does not; ``--stage`` times one attack alone on
every clean-correct point (APGD-T and FAB-T alone are targets of their own).

    pip install pyautoattack==0.2.0        # the bench extra: .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/autoattack_ratio.py --points 160 --threads 1
    .venv/bin/python bench/autoattack_ratio.py --stage apgd_t --stage fab_t --skip-natural

Targets (issue 30, CPU, one process): chain >= 2x on the robust fixture with the same robust accuracy (within one
point, never weaker) and 0 AutoAttack-only breaks; APGD-T >= 2x and FAB-T >= 1.5x alone; natural chain >= 20x.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from attacks import ATTACKS  # noqa: E402
from attacks.base import Ball, Norm  # noqa: E402
from attacks.inference import prefers_channels_last, scorer  # noqa: E402
from attacks.presets import AUTOATTACK_STANDARD, PRESETS  # noqa: E402
from attacks.recipes import Recipe, auto_warmup  # noqa: E402
from attacks.training import Adversary, train  # noqa: E402
from audit.data.sources.builtin import load_digits28  # noqa: E402
from audit.methods.evaluation import attack_mode  # noqa: E402
from audit.models import MadryCNN  # noqa: E402

EPS = 0.3
PASSES: dict[str, tuple[int, int]] = {}  # attack -> (forward+backward, forward) passes of our last runs
AA_NAMES = {"apgd_ce": "apgd-ce", "apgd_t": "apgd-t", "fab_t": "fab-t", "square": "square"}


def fixture(kind: str, cache: Path, epochs: int, width: int, hidden: int) -> torch.nn.Module:
    """The Madry CNN trained on digits28, adversarially ("robust": PGD-7 at Linf 0.3) or not ("natural"); the
    weights are cached as safetensors (no pickle)."""
    from safetensors.torch import load_file, save_file
    model = MadryCNN(width=width, hidden=hidden)
    path = cache / f"madry_digits28_{kind}_w{width}_h{hidden}_e{epochs}.safetensors"
    if path.exists():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    d = load_digits28()
    torch.manual_seed(0)
    adversarial = kind == "robust"
    recipe = Recipe(epochs=epochs, batch_size=64, lr=2e-3, warmup_epochs=auto_warmup(epochs) if adversarial else 0,
                    select="best" if adversarial else "last", holdout=128 if adversarial else 0, seed=0)
    start = time.perf_counter()
    train(model, d.x_train, d.y_train, recipe, Adversary("pgd", EPS, steps=7) if adversarial else None)
    print(f"trained the {kind} fixture in {time.perf_counter() - start:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model.eval()


def test_points(model, n: int):
    d = load_digits28()
    x, y = d.x_test[:n], d.y_test[:n]
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    return x, y, clean


def our_stage(model, name: str, x, y, seed: int):
    """One of our attacks on (x, y) at the standard preset's settings: (fooled mask, seconds)."""
    spec = ATTACKS[name]
    preset = PRESETS["standard"]
    params = spec.make(**{f: preset[k] for f, k in _keys(spec).items() if k in preset}, **_early(spec))
    gen = torch.Generator().manual_seed(seed)
    layout = prefers_channels_last(model, x)  # as the audit's grid runs them (audit/methods/evaluation.py)
    start = time.perf_counter()
    with attack_mode(model, torch.device("cpu"), "fp32", layout):
        xs = x.contiguous(memory_format=torch.channels_last) if layout else x
        out = spec.function(model, xs, y, Ball(EPS, Norm.LINF, (0.0, 1.0)), params, generator=gen)
    seconds = time.perf_counter() - start
    PASSES[name] = (PASSES.get(name, (0, 0))[0] + out.example_passes,
                    PASSES.get(name, (0, 0))[1] + out.forward_passes)
    with torch.no_grad():
        return model(out.x_adv.contiguous()).argmax(1) != y, seconds


def _keys(spec):
    from attacks.spec import config_keys
    return config_keys(spec.params)


def _early(spec):
    return {"early_stop": True} if "early_stop" in spec.param_names else {}


def aa_stage(aa, name: str, x, y):
    """One AutoAttack stage as its run_standard_evaluation calls it: (fooled mask, seconds)."""
    start = time.perf_counter()
    if name == "apgd_ce":
        aa.apgd.loss, aa.apgd.seed = "ce", aa.get_seed()
        adv = aa.apgd.perturb(x, y)
    elif name == "apgd_t":
        aa.apgd_targeted.seed = aa.get_seed()
        adv = aa.apgd_targeted.perturb(x, y)
    elif name == "fab_t":
        aa.fab.targeted, aa.fab.n_restarts, aa.fab.seed = True, 1, aa.get_seed()
        adv = aa.fab.perturb(x, y)
    else:
        aa.square.seed = aa.get_seed()
        adv = aa.square.perturb(x, y)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return aa.get_logits(adv).argmax(1) != y, seconds


def make_autoattack(model):
    from pyautoattack import AutoAttack
    aa = AutoAttack(model, norm="Linf", eps=EPS, version="standard", seed=0, device="cpu")
    aa.logger.setLevel("ERROR")
    return aa


def chains(runs, stages, x, y, clean):
    """Each stage on the points every earlier one left robust, for each runner in ``runs`` (ours, AutoAttack's),
    stage by stage in turn, so a machine that changes speed during the bench moves both alike: per runner (robust
    mask, per-stage seconds)."""
    state = [(clean.clone(), {}) for _ in runs]
    for i, name in enumerate(stages):
        for run, (robust, seconds) in zip(runs, state, strict=True):
            idx = robust.nonzero().flatten()
            if idx.numel() == 0:
                seconds[name] = 0.0
                continue
            fooled, seconds[name] = run(name, x[idx], y[idx], i)
            robust[idx[fooled]] = False
    return state


def warm_up(model, aa, x, y):
    """Every stage of both on 8 points at a few steps: allocator, kernels and imports warmed before timing."""
    keep = (aa.apgd.n_iter, aa.apgd_targeted.n_iter, aa.fab.n_iter, aa.square.n_queries)
    aa.apgd.n_iter = aa.apgd_targeted.n_iter = aa.fab.n_iter = 5
    aa.square.n_queries = 20
    for name in AUTOATTACK_STANDARD:
        aa_stage(aa, name, x[:8], y[:8])
        spec = ATTACKS[name]
        small = {"apgd_ce": {"steps": 5}, "apgd_t": {"steps": 5}, "fab_t": {"steps": 5}, "square": {"queries": 20}}
        spec.function(model, x[:8], y[:8], Ball(EPS, Norm.LINF, (0.0, 1.0)), spec.make(**small[name]),
                      generator=torch.Generator().manual_seed(0))
    aa.apgd.n_iter, aa.apgd_targeted.n_iter, aa.fab.n_iter, aa.square.n_queries = keep


def pass_seconds(model, rows: int = 160) -> tuple[float, float]:
    """Seconds per example of one forward+backward and of one forward, each at its fastest here (channels-last or
    not; eager or the traced twin), at ``rows`` rows: the price list of the hardware bound."""
    x = torch.rand(rows, 1, 28, 28)

    def best(fn, reps=5):
        fn()
        out = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t)
        return out / rows

    def fb(xs):
        r = xs.detach().requires_grad_(True)
        torch.autograd.grad(model(r).sum(), r)
    times_fb, times_f = [], []
    for layout in (False, True):
        with attack_mode(model, torch.device("cpu"), "fp32", layout):
            xs = x.contiguous(memory_format=torch.channels_last) if layout else x
            times_fb.append(best(lambda xs=xs: fb(xs)))
            with torch.no_grad():
                fast = scorer(model, xs)
                times_f += [best(lambda xs=xs: model(xs)), best(lambda xs=xs, fast=fast: fast(xs))]
    return min(times_fb), min(times_f)


def bound_line(kind: str, name: str, seconds: float, prices: tuple[float, float]) -> str:
    fb, f = PASSES.get(name, (0, 0))
    bound = fb * prices[0] + f * prices[1]
    return (f"{kind:8s} {name:8s} hardware bound of our passes ({fb:,} fwd+bwd, {f:,} fwd): {bound:6.2f} s; ours at "
            f"{bound / seconds:4.0%} of it" if seconds > 0 else "")


def compare(kind: str, model, args) -> dict:
    x, y, clean = test_points(model, args.points)
    aa = make_autoattack(model)
    warm_up(model, aa, x, y)
    prices = pass_seconds(model)
    PASSES.clear()
    print(f"{kind:8s} price per example: fwd+bwd {prices[0] * 1e6:.0f} us, fwd {prices[1] * 1e6:.0f} us (fastest "
          "layout and forward, 160 rows)")
    stages = tuple(args.stage) or AUTOATTACK_STANDARD
    if args.stage:  # each alone on every clean-correct point
        rows = {}
        idx = clean.nonzero().flatten()
        for name in stages:
            ours_f, ours_s = our_stage(model, name, x[idx], y[idx], 0)
            aa_f, aa_s = aa_stage(aa, name, x[idx], y[idx])
            rows[name] = {"ours_s": round(ours_s, 2), "autoattack_s": round(aa_s, 2), "ratio": round(aa_s / ours_s, 2),
                          "ours_broken": int(ours_f.sum()), "autoattack_broken": int(aa_f.sum()),
                          "autoattack_only": int((aa_f & ~ours_f).sum()), "ours_only": int((ours_f & ~aa_f).sum())}
            print(f"{kind:8s} {name:8s} alone: AutoAttack {aa_s:7.2f} s  ours {ours_s:7.2f} s  ratio "
                  f"{aa_s / ours_s:5.2f}x  broken {int(aa_f.sum())} vs {int(ours_f.sum())}  AutoAttack-only "
                  f"{rows[name]['autoattack_only']}", flush=True)
            print(bound_line(kind, name, ours_s, prices))
        return {"kind": kind, "alone": rows}
    (ours_rob, ours_sec), (aa_rob, aa_sec) = chains(
        (lambda n, xs, ys, i: our_stage(model, n, xs, ys, i), lambda n, xs, ys, i: aa_stage(aa, n, xs, ys)),
        stages, x, y, clean)
    total_o, total_a = sum(ours_sec.values()), sum(aa_sec.values())
    row = {"kind": kind, "points": len(y), "clean": float(clean.float().mean()),
           "ours_robust": float(ours_rob.float().mean()), "autoattack_robust": float(aa_rob.float().mean()),
           "autoattack_only_breaks": int((ours_rob & ~aa_rob).sum()),
           "ours_only_breaks": int((aa_rob & ~ours_rob).sum()),
           "stages": {n: {"ours_s": round(ours_sec[n], 2), "autoattack_s": round(aa_sec[n], 2)} for n in stages},
           "ours_s": round(total_o, 2), "autoattack_s": round(total_a, 2), "ratio": round(total_a / total_o, 2)}
    for n in stages:
        r = aa_sec[n] / ours_sec[n] if ours_sec[n] > 0 else float("nan")
        print(f"{kind:8s} {n:8s} AutoAttack {aa_sec[n]:7.2f} s  ours {ours_sec[n]:7.2f} s  ratio {r:6.2f}x")
        print(bound_line(kind, n, ours_sec[n], prices))
    print(f"{kind:8s} chain    AutoAttack {total_a:7.2f} s  ours {total_o:7.2f} s  ratio {row['ratio']:6.2f}x  "
          f"robust {row['autoattack_robust']:.1%} (AutoAttack) vs {row['ours_robust']:.1%} (ours), clean "
          f"{row['clean']:.1%}; AutoAttack-only breaks {row['autoattack_only_breaks']}, ours-only "
          f"{row['ours_only_breaks']}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--narrow", action="store_true", help="the 16/256 CNN instead of the full 32/1024 Madry CNN")
    ap.add_argument("--stage", action="append", default=[], choices=AUTOATTACK_STANDARD,
                    help="time this attack alone on every clean-correct point (repeatable)")
    ap.add_argument("--skip-natural", action="store_true")
    ap.add_argument("--skip-robust", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path("out/bench/models"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    width, hidden = (16, 256) if args.narrow else (32, 1024)
    rows = []
    for kind in ("robust", "natural"):
        if (kind == "natural" and args.skip_natural) or (kind == "robust" and args.skip_robust):
            continue
        model = fixture(kind, args.cache, args.epochs, width, hidden)
        for p in model.parameters():
            p.requires_grad_(False)
        rows.append(compare(kind, model, args))
    print(f"machine: {torch.get_num_threads()} torch thread(s), torch {torch.__version__}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
