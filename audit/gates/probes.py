"""Gates that attack again on the probe subsample: C3 convergence (doubled steps, more restarts), C4 an unbounded
attack reaches chance, C5 random noise is weaker than the attack, C6 a black-box attack (ART's Square) is not
stronger than the white-box ones."""
from __future__ import annotations

import math

import numpy as np
import torch

from attacks.base import Norm, clip_to, frozen_eval
from audit.gates.base import FAIL, PASS, SKIPPED, WARN, GateResult, Probe


def _tol(n: int) -> float:
    """One point of accuracy, or two probe points when the subsample is small."""
    return max(0.01, 2.0 / max(n, 1))


def c3_convergence(p: Probe) -> GateResult:
    s = p.settings
    base = p.grid_worst(p.eps)
    stronger = base.copy()
    runs = []
    for attack in s.attacks:
        params = s.params(attack)
        if "steps" not in params:
            continue
        params.update(steps=2 * params["steps"], restarts=params["restarts"] + 1)
        # only points still robust can change: a point the grid broke stays broken in the combined worst case
        stronger &= p.robust_under(attack, p.eps, only=stronger.copy(), **params)
        runs.append(f"{attack} {params['steps']} steps x {params['restarts']}")
    if not runs:
        return GateResult("C3", "convergence", SKIPPED, "no iterative attack in the grid")
    n = len(base)
    drop = float(base.mean() - stronger.mean())
    values = {"eps": p.eps, "points": n, "grid": float(base.mean()), "stronger": float(stronger.mean()),
              "drop": drop, "runs": runs}
    text = (f"doubling steps and adding a restart ({'; '.join(runs)}) moves worst-case robust accuracy on {n} "
            f"points at eps {p.eps:g} from {base.mean():.1%} to {stronger.mean():.1%}")
    tol = _tol(n)
    if drop <= tol:
        return GateResult("C3", "convergence", PASS, text + " (converged)", values)
    status = WARN if drop <= 3 * tol else FAIL
    return GateResult("C3", "convergence", status, text + ": the grid's attacks have not converged; raise the "
                      "steps or restarts (preset 'thorough')", values)


def unbounded_eps(p: Probe) -> float:
    """Linf: half the input range (any input reaches mid-grey); L2: the same box's half-diagonal."""
    half = 0.5 * p.range_width
    if p.norm is Norm.LINF:
        return half
    return half * math.sqrt(p.x[0].numel())


def c4_unbounded(p: Probe) -> GateResult:
    eps = unbounded_eps(p)
    steps = max(2 * p.settings.pgd_steps, 40)
    acc = float(p.robust_under("pgd", eps, steps=steps, restarts=1, early_stop=True).mean())
    chance = 1.0 / p.num_classes
    values = {"eps": eps, "accuracy": acc, "chance": chance, "steps": steps}
    text = f"PGD-{steps} at {p.norm.value} eps {eps:g} (unbounded for this range) leaves {acc:.1%} accuracy; " \
           f"chance is {chance:.1%}"
    if acc <= chance + 0.05:
        return GateResult("C4", "unbounded attack reaches chance", PASS, text, values)
    status = WARN if acc <= chance + 0.2 else FAIL
    return GateResult("C4", "unbounded attack reaches chance", status,
                      text + ": gradients do not lead the attack even with no effective bound (gradient masking, "
                      "or a non-differentiable step in the model)", values)


def c5_noise(p: Probe, draws: int = 8) -> GateResult:
    gen = torch.Generator().manual_seed(p.seed + 11)
    ok = p.clean_ok()
    bad, rows = [], []
    for eps in sorted({pt.eps for pt in p.grid.points}):
        robust = ok.copy()
        with frozen_eval(p.model), torch.no_grad():
            for _ in range(draws):
                if p.norm is Norm.LINF:  # random corners of the ball: the strongest random Linf noise
                    d = torch.randint(0, 2, p.x.shape, generator=gen).to(p.x.device, p.x.dtype) * 2 - 1
                    d = d * eps
                else:
                    d = torch.randn(p.x.shape, generator=gen).to(p.x.device, p.x.dtype)
                    d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, *([1] * (d.dim() - 1)))
                robust &= (p.model(clip_to(p.x + d, p.clip)).argmax(1) == p.y).cpu().numpy()
        noise, attack = float(robust.mean()), float(p.grid_worst(eps).mean())
        rows.append({"eps": eps, "noise": noise, "attack": attack})
        if noise < attack - _tol(len(ok)):
            bad.append(f"eps {eps:g}: noise {noise:.1%} < attack {attack:.1%}")
    if bad:
        return GateResult("C5", "noise weaker than attack", FAIL, "random noise breaks more points than the attacks "
                          "(the attacks are not working): " + "; ".join(bad), {"rows": rows})
    mid = rows[len(rows) // 2]
    return GateResult("C5", "noise weaker than attack", PASS,
                      f"{draws} random {p.norm.value} draws per point leave accuracy at or above the attacks' at "
                      f"every eps (eps {mid['eps']:g}: noise {mid['noise']:.1%}, attack {mid['attack']:.1%})",
                      {"rows": rows})


def c6_black_box(p: Probe) -> GateResult:
    """ART's SquareAttack (true labels, clip values, seeded) on up to ``square_points`` probe points that every
    white-box attack left correctly classified: a point Square breaks there is one the gradients missed."""
    name = "black-box not stronger than white-box"
    if p.x.dim() != 4:
        return GateResult("C6", name, SKIPPED, "ART's Square attack handles image inputs (N, C, H, W) only")
    if min(p.x.shape[2], p.x.shape[3]) < 3:
        return GateResult("C6", name, SKIPPED, "images smaller than 3x3")
    wb = p.grid_worst(p.eps)
    rows = np.flatnonzero(wb)[:p.settings.square_points]
    values = {"eps": p.eps, "queries": p.settings.square_queries, "white_box_robust": int(wb.sum()),
              "attacked": int(rows.size)}
    if rows.size == 0:
        return GateResult("C6", name, PASS, f"no probe point survives the white-box attacks at eps {p.eps:g}: "
                          "nothing left for a black-box attack to break", values)
    sel = torch.from_numpy(rows).to(p.x.device)
    x, y = p.x[sel], p.y[sel]
    from art.attacks.evasion import SquareAttack
    from audit.checks.art_agreement import art_classifier
    clf = art_classifier(p.model, x.shape[1:], p.num_classes, p.clip)
    np.random.seed(p.seed)
    atk = SquareAttack(clf, norm=np.inf if p.norm is Norm.LINF else 2, eps=p.eps, max_iter=p.settings.square_queries,
                       nb_restarts=1, batch_size=p.settings.batch_size, verbose=False)
    adv = atk.generate(x=x.cpu().numpy(), y=np.eye(p.num_classes, dtype=np.float32)[y.cpu().numpy()])
    with frozen_eval(p.model), torch.no_grad():
        still = (p.model(torch.from_numpy(adv).to(x.device)).argmax(1) == y).cpu().numpy()
    only_bb = int((~still).sum())
    n = len(wb)
    values.update(broken_only_by_square=only_bb, share_of_probe=only_bb / n)
    text = (f"Square ({p.settings.square_queries} queries, eps {p.eps:g}) breaks {only_bb} of the {rows.size} probe "
            f"points every white-box attack left correct")
    if only_bb == 0:
        return GateResult("C6", name, PASS, text, values)
    status = FAIL if only_bb / n > 0.01 and only_bb >= 2 else WARN
    return GateResult("C6", name, status, text + ": gradients mislead the white-box attacks on these points "
                      "(gradient masking)", values)
