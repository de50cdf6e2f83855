"""Peak memory of an audit on a memory-mapped data set of about 1 GB, against the same audit on a tiny one.

Writes x_/y_ train/test .npy files (3x32x32 float32 images; the test split holds the gigabyte), a small CNN's
weights, and a config; runs `advaudit run` on each under /usr/bin/time -v and prints the maximum resident set
size of both and their difference (what the data costs on top of the model, the libraries and the interpreter).
Target (issue 3): under 1 GB above the model's own footprint. Usage: python bench/memmap_memory.py [--gb 1.0]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROW = (3, 32, 32)
CONFIG = """checks = ["input_validation", "clean_accuracy", "robustness"]
device = "cpu"
[data]
source = "npy"
path = "{data}"
[model]
factory = "audit.models:build_small_cnn"
kwargs = {{ in_channels = 3, image_size = 32, num_classes = 10 }}
weights = "{weights}"
[attacks]
attacks = ["fgsm"]
eps = [0.1]
batch_size = 512
"""


def write_split(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        x = np.lib.format.open_memmap(folder / f"x_{split}.npy", mode="w+", dtype=np.float32, shape=(n, *ROW))
        for i in range(0, n, 4096):
            k = min(4096, n - i)
            x[i:i + k] = rng.random((k, *ROW), dtype=np.float32)
        x.flush()
        del x
        np.save(folder / f"y_{split}.npy", rng.integers(0, 10, n))


def peak_rss_mb(config: Path, out: Path) -> tuple[float, float]:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "audit", "run", "--config", str(config), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({proc.returncode}): {proc.stderr[-2000:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return kb / 1024, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gb", type=float, default=1.0, help="size of the large test split in GB (1e9 bytes)")
    p.add_argument("--dir", type=Path, default=None, help="where to write the data (default: a temp dir)")
    args = p.parse_args()
    row_bytes = int(np.prod(ROW)) * 4
    n_big = int(args.gb * 1e9 // row_bytes)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        from audit.models.reference import SmallCNN
        save_file(SmallCNN(in_channels=3, image_size=32).state_dict(), str(root / "w.safetensors"))
        rows = {}
        for name, n_test in (("tiny", 1024), ("large", n_big)):
            write_split(root / name, 1024, n_test)
            cfg = root / f"{name}.toml"
            cfg.write_text(CONFIG.format(data=name, weights="w.safetensors"), encoding="utf-8")
            size = sum(f.stat().st_size for f in (root / name).glob("*.npy")) / 1e9
            rss, secs = peak_rss_mb(cfg, root / f"out-{name}")
            rows[name] = (n_test, size, rss, secs)
            print(f"{name:>6}: {n_test:>7} test images, data {size:6.3f} GB on disk, peak RSS {rss:7.1f} MB, "
                  f"{secs:5.1f} s", flush=True)
    extra = rows["large"][2] - rows["tiny"][2]
    print(f"peak RSS above the tiny-data run: {extra:.1f} MB for {rows['large'][1]:.3f} GB of data "
          f"({extra / (rows['large'][1] * 1000):.3f} MB per MB of data); target < 1000 MB: "
          f"{'met' if extra < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
