"""Checks of the user's model against the data before anything is trained or attacked.

Problems that make every later number meaningless are errors (exit 2, one line): a model that cannot take the
data's inputs, an output that is not (N, num_classes), labels beyond the model's classes, non-finite or
non-deterministic outputs, eps larger than the input range. Suspicious but auditable inputs are warnings that the
``input_validation`` finding reports: outputs that look like probabilities, a model archived in train mode.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from attacks.base import Norm, frozen_eval
from audit.core.errors import UsageError, first_line
from audit.data.splits import Splits
from audit.methods.label_issues import read_pred_probs
from audit.models.adapters import looks_like_probabilities

PROBE_ROWS = 64
EVAL_BATCH = 1024  # the largest batch advaudit evaluates with (capped by attacks.batch_size)


def check_eps(eps_grid, norm: Norm, data: Splits) -> None:
    """eps must be in the units of the input range: 8 instead of 8/255 on [0, 1] images is an error."""
    width = data.range_width
    limit = width if Norm(norm) is Norm.LINF else width * math.sqrt(math.prod(data.input_shape))
    big = max(eps_grid)
    if big > limit:
        hint = f" (did you mean {big:g}/255 = {big / 255:.6g}?)" if width <= 1.0 and big >= 1 else ""
        raise UsageError(f"attacks.eps: {big:g} exceeds the {Norm(norm).value} size of the whole input range "
                         f"({limit:g}); eps is in input units{hint}")


def first_non_finite_row(model: torch.nn.Module, x, device: torch.device, batch_size: int = EVAL_BATCH) -> int:
    """The first row of ``x`` whose logits are not all finite, or -1."""
    with frozen_eval(model), torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            ok = torch.isfinite(model(x[i:i + batch_size].to(device))).all(1)
            if not bool(ok.all()):
                return i + int((~ok).nonzero()[0, 0])
    return -1


def eval_batch(config) -> int:
    """The batch size of every no-gradient evaluation: at most attacks.batch_size, which pre-flight probed."""
    return min(EVAL_BATCH, config.attacks.batch_size)


def check_batch_sizes(model: torch.nn.Module, data: Splits, device: torch.device, sizes: dict[str, int]) -> None:
    """Run the model once at each batch size the run will use (``key -> rows``, largest first, as many rows as
    the data has): a model that fails on a large batch is exit 2 naming the size and the key to lower, not a
    crash an hour in."""
    rows = max(int(data.x_test.shape[0]), 1)
    tried: set[int] = set()
    for key, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        n = min(size, max(rows, int(data.x_train.shape[0])))
        if n in tried or n <= PROBE_ROWS:
            continue
        tried.add(n)
        x = data.x_test[:min(rows, n)]
        reps = -(-n // x.shape[0])
        try:
            xb = (x if reps == 1 else torch.cat([x] * reps))[:n].to(device)
            with frozen_eval(model), torch.no_grad():
                out = model(xb)
            ok = isinstance(out, torch.Tensor) and out.shape[0] == n
            why = "" if ok else f"its output has {tuple(out.shape) if isinstance(out, torch.Tensor) else out!r}"
        except Exception as e:  # noqa: BLE001 - any failure at this size is the finding
            ok, why = False, first_line(e, 120)
        if not ok:
            works = _largest_working(model, xb, device, n)
            raise UsageError(f"{key}: the model fails on a batch of {n} rows ({why}); the largest batch it takes is "
                             f"{works}: set attacks.batch_size and training.batch_size to at most {works}")


def _largest_working(model, xb: torch.Tensor, device, failed: int) -> int:
    """Halving from ``failed`` down to PROBE_ROWS (which passed): the first size the model takes."""
    size = failed // 2
    while size > PROBE_ROWS:
        try:
            with frozen_eval(model), torch.no_grad():
                if model(xb[:size]).shape[0] == size:
                    return size
        except Exception:  # noqa: BLE001 - keep halving
            pass
        size //= 2
    return PROBE_ROWS


def check_model(model: torch.nn.Module, data: Splits, device: torch.device, *, explicit_classes: bool,
                was_training: bool = False, pretrained: bool = False,
                batch_size: int = EVAL_BATCH) -> tuple[Splits, list[str]]:
    """Probe ``model`` on a few test rows; return the data (num_classes settled) and warnings."""
    warnings = []
    if was_training:
        warnings.append("the model was saved in train mode; it is audited in eval mode (dropout off, batch-norm "
                        "running statistics), as deployed models should be")
    x = data.x_test[:PROBE_ROWS].to(device)
    try:
        with frozen_eval(model), torch.no_grad():
            out = model(x)
            again = model(x)
    except Exception as e:  # noqa: BLE001 - any failure here means model and data do not fit
        msg = first_line(e)
        if "Guard failed" in msg:
            msg += (" (a torch.export program needs a dynamic batch dimension: export with "
                    "dynamic_shapes={'x': {0: torch.export.Dim('batch')}})")
        raise UsageError(f"model/data mismatch: the model cannot take inputs of shape {tuple(x.shape)}: {msg}") \
            from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"model output: expected logits of shape (N, num_classes) for {x.shape[0]} inputs, got "
                         f"{shape}")
    if not torch.isfinite(out).all():
        raise UsageError("model output: NaN or Inf logits on clean test inputs")
    if pretrained:
        bad = first_non_finite_row(model, data.x_test, device, batch_size)
        if bad >= 0:
            raise UsageError(f"model output: NaN or Inf logits on test row {bad} (every test row is checked before "
                             f"any work)")
    diff = float((out - again).abs().max())
    if diff > 1e-4 * (1.0 + float(out.abs().max())):
        raise UsageError(f"model is non-deterministic in eval mode: two passes on the same inputs differ by "
                         f"{diff:.3g} (random layers active at test time); robustness against a stochastic model "
                         f"needs expectation over transformation, which this audit does not run")
    k = out.shape[1]
    top = max(int(data.y_train.max()), int(data.y_test.max()))
    if top >= k:
        raise UsageError(f"labels go up to {top} but the model outputs {k} classes: label {top} is out of range "
                         f"(the number of classes disagrees)")
    if k != data.num_classes:
        if explicit_classes:
            raise UsageError(f"model outputs {k} classes but data.num_classes/class_names declare "
                             f"{data.num_classes}")
        names = data.class_names + tuple(str(i) for i in range(len(data.class_names), k))
        data = dataclasses.replace(data, num_classes=k, class_names=names[:k])
    if looks_like_probabilities(out):
        warnings.append("the model's outputs are non-negative and sum to 1: they look like probabilities, not "
                        "logits; cross-entropy attacks on probabilities mask gradients and overstate robustness; "
                        "remove the final softmax")
    return data, warnings


def check_pred_probs(cfg, data: Splits):
    """The user's out-of-sample probabilities (label_issues.pred_probs), read and checked now, or None."""
    if not cfg.pred_probs:
        return None
    return read_pred_probs(Path(cfg.pred_probs), int(data.y_train.shape[0]), data.num_classes)


def check_certified_training(model, defences, norm: Norm, data: Splits, device: torch.device) -> None:
    """A defence trained with IBP needs a Linf threat and a model its bounds can be trained through (``model``: a
    callable building the model the defences train): refused before any training."""
    from attacks.bound_graph import NotCertifiable
    from attacks.certified_training import training_graph
    for i, d in enumerate(defences):
        if d.method != "ibp" or d.weights:
            continue
        if Norm(norm) is not Norm.LINF:
            raise UsageError(f"defences[{i}] ({d.name}): method 'ibp' trains against the Linf box; the attacks' "
                             f"norm is {Norm(norm).value} (use method 'pgd' for an L2 threat)")
        try:
            training_graph(model(), data.x_test[:8].to(device))
        except NotCertifiable as e:
            raise UsageError(f"defences[{i}] ({d.name}): method 'ibp' cannot train this model: {e}") from None
