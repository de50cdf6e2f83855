"""C5: random noise at the same eps breaks no more points than the attacks (else the attacks are not working)."""
from __future__ import annotations

import torch

from attacks.base import Norm, clip_to, frozen_eval
from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult
from audit.methods.seeding import VALIDITY_NOISE

DRAWS = 8


class Noise(ValidityCheck):
    id, name = "C5", "noise weaker than attack"

    def evaluate(self, p: Probe) -> ValidityResult:
        gen = torch.Generator().manual_seed(VALIDITY_NOISE.seed(p.seed))
        ok = p.clean_ok()
        bad, rows = [], []
        for eps in sorted({pt.eps for pt in p.grid.points}):
            robust = ok.copy()
            with frozen_eval(p.model), torch.no_grad():
                for _ in range(DRAWS):
                    if p.norm is Norm.LINF:  # random corners of the ball: the strongest random Linf noise
                        d = torch.randint(0, 2, p.x.shape, generator=gen).to(p.x.device, p.x.dtype) * 2 - 1
                        d = d * eps
                    else:
                        d = torch.randn(p.x.shape, generator=gen).to(p.x.device, p.x.dtype)
                        d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, *([1] * (d.dim() - 1)))
                    robust &= (p.model(clip_to(p.x + d, p.clip)).argmax(1) == p.y).cpu().numpy()
            p.record_breaks(f"C5 random noise ({DRAWS} draws)", eps, ok, robust)
            noise, attack = float(robust.mean()), float(p.grid_worst(eps).mean())
            rows.append({"eps": eps, "noise": noise, "attack": attack})
            if noise < attack - p.probe_tolerance():
                bad.append(f"eps {eps:g}: noise {noise:.1%} < attack {attack:.1%}")
        if bad:
            return self.result(FAIL, "random noise breaks more points than the attacks (the attacks are not "
                               "working): " + "; ".join(bad), {"rows": rows})
        mid = rows[len(rows) // 2]
        return self.result(PASS, f"{DRAWS} random {p.norm.value} draws per point leave accuracy at or above the "
                           f"attacks' at every eps (eps {mid['eps']:g}: noise {mid['noise']:.1%}, attack "
                           f"{mid['attack']:.1%})", {"rows": rows})
