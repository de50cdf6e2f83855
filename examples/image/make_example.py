"""Create this example's inputs as a user would have them: ``data.npz`` and ``weights.safetensors``.

The data are scikit-learn's digits in [0, 1]; the model is trained on inputs normalised with MEAN/STD, the same
values the config declares as input.mean / input.std (advaudit applies them inside a wrapper, so eps stays in
[0, 1] pixel units). Run: python make_example.py [OUTPUT_DIR]
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import build  # noqa: E402

MEAN, STD = 0.3, 0.4


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:450], order[450:]
    np.savez(out / "data.npz", x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = (torch.from_numpy(x[train]) - MEAN) / STD, torch.from_numpy(y[train])
    for _ in range(15):
        for i in torch.randperm(len(yt)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(xt[i]), yt[i]).backward()
            opt.step()
    save_file(model.state_dict(), str(out / "weights.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
