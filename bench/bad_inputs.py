"""Wall time of a failing run for every class of bad input (issue 15): each must fail with exit 2 before any
training, on the demo data (scikit-learn's digits with the demo's config and a real `advaudit run` process).

    .venv/bin/python bench/bad_inputs.py          # prints one row per case and the slowest

Each case is a fresh `advaudit run` subprocess (Python start-up and imports included), timed after one warm-up
run so the file cache is hot.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audit.data.sources.builtin import load_digits  # noqa: E402
from audit.models import SmallCNN  # noqa: E402


def project(d: Path) -> None:
    s = load_digits()
    np.savez(d / "data.npz", x_train=s.x_train.numpy(), y_train=s.y_train.numpy(), x_test=s.x_test.numpy(),
             y_test=s.y_test.numpy())
    save_file(SmallCNN().state_dict(), str(d / "w.safetensors"))
    torch.save({"state_dict": {"x": torch.zeros(1)}}, d / "ok.pt")
    (d / "empty.pt").write_bytes(b"")
    base = dict(np.load(d / "data.npz"))
    np.savez(d / "one-class.npz", **{**base, "y_train": np.zeros_like(base["y_train"])})
    np.savez(d / "uint64.npz", **{**base, "y_train": np.full(len(base["y_train"]), 2**64 - 1, np.uint64)})
    np.savez(d / "nan.npz", **{**base, "x_test": np.where(np.arange(len(base["x_test"]))[:, None, None, None] == 400,
                                                         np.nan, base["x_test"])})
    raw = bytearray((d / "data.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "crc.npz").write_bytes(bytes(raw))
    (d / "project").mkdir()
    (d / "project" / "notes.txt").write_text("mine")


DEMO = '[[defences]]\nname = "pgd_at"\nmethod = "pgd"\neps = 0.1\ncandidate = "pgd_at"\n'
CASES = {
    "corrupted npz member": ('[data]\nsource = "npz"\npath = "crc.npz"\n', "out"),
    "empty .pt weights": ('[model]\nweights = "empty.pt"\n', "out"),
    "single-class data": ('[data]\nsource = "npz"\npath = "one-class.npz"\n', "out"),
    "nan in the eps grid": ('[attacks]\neps = [0.1, nan]\n', "out"),
    "nan learning rate": ('[training]\nlr = nan\n', "out"),
    "negative seed": ('seed = -1\n', "out"),
    "uint64 labels": ('[data]\nsource = "npz"\npath = "uint64.npz"\n', "out"),
    "NaN in a late test row": ('[data]\nsource = "npz"\npath = "nan.npz"\n', "out"),
    "--out is a project folder": ("", "project"),
    "unwritable --out": ("", "/proc/advaudit-out"),
    "eps in pixel units": ('[attacks]\neps = [0.1, 8.0]\n', "out"),
}


def run(d: Path, body: str, out: str) -> tuple[float, int, str]:
    head, rest = ("", body) if body.startswith("[") else (body, "")
    (d / "c.toml").write_text(f'candidate = "pgd_at"\n{head}' + rest.replace(DEMO, "") +
                              '\n[[defences]]\nname = "pgd_at"\nmethod = "pgd"\neps = 0.1\n')
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audit", "run", "--config", str(d / "c.toml"), "--out",
                           str(d / out) if not out.startswith("/") else out], capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr.strip()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        project(d)
        run(d, "seed = -1\n", "out")  # warm-up
        rows = []
        for name, (body, out) in CASES.items():
            seconds, code, err = run(d, body, out)
            rows.append((name, seconds, code, err))
            print(f"{name:28s} {seconds:6.2f} s  exit {code}  {err[:90]}")
        worst = max(r[1] for r in rows)
        print(f"\nslowest failing run: {worst:.2f} s (target < 5 s); every exit code 2: {all(r[2] == 2 for r in rows)}")


if __name__ == "__main__":
    main()
