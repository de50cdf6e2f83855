"""Out-of-distribution detection: can the model's own scores tell test inputs from shifted ones?

Shifted sets are generated from the test split (images: uniform noise in the clip range and pixel-shuffled
test images, which keep the intensity histogram but lose all structure; tabular: uniform values inside each
feature's bounds and features shuffled across rows, which keeps the marginals but breaks their dependence),
plus the user's own OOD inputs (``data.ood_path``: an .npz with an array ``x``). Scores (higher = in
distribution): maximum softmax probability (Hendrycks & Gimpel 2017), negative energy = logsumexp of the logits
(Liu et al. 2020), and cleanlab's OutOfDistribution confidence score fitted on the training predictions.
Reported: AUROC and the false-positive rate at 95% true-positive rate, per score and shifted set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audit.checks.base import controls
from audit.context import Context
from audit.errors import UsageError
from audit.result import Measurement

MAX_POINTS = 2000


def shifted_sets(ctx: Context) -> dict[str, torch.Tensor]:
    n = min(MAX_POINTS, ctx.data.x_test.shape[0])
    x = ctx.data.x_test[:n].float()
    g = torch.Generator().manual_seed(ctx.config.seed + 7)
    lo, hi = ctx.data.attack_clip
    lo = lo if isinstance(lo, torch.Tensor) else torch.tensor(float(lo))
    hi = hi if isinstance(hi, torch.Tensor) else torch.tensor(float(hi))
    uniform = lo + (hi - lo) * torch.rand(x.shape, generator=g)
    flat = x.flatten(1)
    if ctx.data.kind == "image":
        perm = torch.stack([torch.randperm(flat.shape[1], generator=g) for _ in range(n)])
        shuffled = torch.gather(flat, 1, perm).view_as(x)
        sets = {"uniform_noise": uniform, "pixel_shuffled": shuffled}
    else:
        cols = [flat[torch.randperm(n, generator=g), j] for j in range(flat.shape[1])]
        sets = {"uniform_in_bounds": uniform, "feature_shuffled": torch.stack(cols, 1).view_as(x)}
    if ctx.config.data.ood_path:
        path = (Path(ctx.base_dir or ".") / ctx.config.data.ood_path).resolve()
        try:
            with np.load(path, allow_pickle=False) as z:
                user = torch.from_numpy(np.asarray(z["x"], dtype=np.float32))
        except (OSError, KeyError, ValueError) as e:
            raise UsageError(f"data.ood_path: cannot read array 'x' from {path} ({e})") from None
        if tuple(user.shape[1:]) != ctx.data.input_shape:
            raise UsageError(f"data.ood_path: inputs have shape {tuple(user.shape[1:])}, the model takes "
                             f"{ctx.data.input_shape}")
        sets["user_supplied"] = user
    return sets


def auroc_fpr95(inside: np.ndarray, outside: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    auroc = float(roc_auc_score(y, np.r_[inside, outside]))
    threshold = np.quantile(inside, 0.05)  # keeps 95% of in-distribution inputs
    return auroc, float((outside >= threshold).mean())


class OutOfDistribution:
    id = "ood"
    title = "Out-of-distribution detection"
    scope = "variant"
    controls = controls(MEASURE_2_5="supporting", MEASURE_2_6="supporting", MANAGE_2_4="supporting")
    description = "AUROC and FPR at 95% TPR of MSP, energy and cleanlab OOD scores against shifted inputs."

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        from cleanlab.outlier import OutOfDistribution as CleanlabOOD
        model = ctx.variants[variant].model
        test = ctx.test_logits(variant)[: min(MAX_POINTS, ctx.data.x_test.shape[0])]
        n_fit = min(5000, ctx.data.x_train.shape[0])
        fit_logits = ctx.logits(model, ctx.data.x_train[:n_fit])
        detector = CleanlabOOD()
        detector.fit(pred_probs=torch.softmax(fit_logits, 1).numpy(), labels=ctx.data.y_train[:n_fit].numpy(),
                     verbose=False)

        def scores(logits: torch.Tensor) -> dict[str, np.ndarray]:
            probs = torch.softmax(logits, 1)
            return {"msp": probs.amax(1).numpy(), "energy": torch.logsumexp(logits, 1).numpy(),
                    "cleanlab": detector.score(pred_probs=probs.numpy())}
        inside = scores(test)
        table, metrics = {}, {}
        for name, x in shifted_sets(ctx).items():
            out = scores(ctx.logits(model, x))
            table[name] = {}
            for score in inside:
                auroc, fpr = auroc_fpr95(inside[score], out[score])
                table[name][score] = {"auroc": auroc, "fpr_at_95_tpr": fpr}
                metrics[f"auroc_{score}_{name}"] = auroc
        msp = [table[s]["msp"]["auroc"] for s in table]
        metrics["auroc_msp_min"] = float(min(msp))
        worst = min(table, key=lambda s: table[s]["msp"]["auroc"])
        return Measurement(
            check=self.id, variant=variant, metrics=metrics,
            details={"table": table, "points": int(len(test)), "scores": ["msp", "energy", "cleanlab"]},
            summary=f"MSP AUROC {min(msp):.3f} on the hardest shift ({worst.replace('_', ' ')}), FPR@95%TPR "
                    f"{table[worst]['msp']['fpr_at_95_tpr']:.1%}; energy AUROC {table[worst]['energy']['auroc']:.3f}")
