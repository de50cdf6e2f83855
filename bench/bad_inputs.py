"""Every class of bad or hostile input (issues 15 and 25): exit code, seconds, stderr lines, and whether the previous
output survived byte for byte, each in a fresh `advaudit` process on the demo's data and config (PGD-AT defence: a
case that is not refused before training would take minutes, not seconds).

    .venv/bin/python bench/bad_inputs.py          # prints one row per case, then the slowest and the failures

Each case runs after one warm-up process so the file cache is hot. "expect" is the contract: 2 (one stderr line,
nothing written), "0/1" (a complete audit: the two "audit with a warning" inputs and a newer minor schema), 1
(verify finds a problem). Python API cases run `audit.run(...)` in a fresh interpreter and exit 2 on
`audit.UsageError`, 3 on anything else.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from audit.data.sources.builtin import load_digits  # noqa: E402
from audit.models import SmallCNN  # noqa: E402
from tests.helpers import snapshot  # noqa: E402

DEMO = 'candidate = "pgd_at"\n[[defences]]\nname = "pgd_at"\nmethod = "pgd"\n[threat_model]\neps = 0.1\n'
QUICK = ["--set", 'attacks.preset="quick"']  # the demo's preset, without a second [attacks] table in the file


def config_text(body: str) -> str:
    """The demo config with the case's keys: top-level keys first, tables after the demo's."""
    return body + DEMO if body and not body.startswith("[") else DEMO + body
FAST = 'checks = ["input_validation", "clean_accuracy"]\n[model]\nweights = "w.safetensors"\n'
MODELS = '''import torch
from audit.models import SmallCNN


class Probabilities(SmallCNN):
    def forward(self, x):
        return torch.softmax(super().forward(x), 1)


class FailsOver100(SmallCNN):
    def forward(self, x):
        if x.shape[0] > 100:
            raise RuntimeError("CUDA out of memory (simulated) on a batch over 100 rows")
        return super().forward(x)


def probabilities():
    return Probabilities()


def fails_over_100():
    return FailsOver100()
'''


def npy_header(shape) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return b.getvalue()


def keys(d: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    ed, pem = ed25519.Ed25519PrivateKey.generate(), serialization.Encoding.PEM
    (d / "enc.pem").write_bytes(ed.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 serialization.BestAvailableEncryption(b"pw")))
    (d / "rsa.pem").write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (d / "key.pub").write_bytes(ed.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "empty.pem").write_bytes(b"")
    (d / "random.pem").write_bytes(os.urandom(300))


def project(d: Path) -> None:
    s = load_digits()
    arrays = dict(x_train=s.x_train.numpy(), y_train=s.y_train.numpy(), x_test=s.x_test.numpy(),
                  y_test=s.y_test.numpy())
    np.savez(d / "data.npz", **arrays)
    np.savez(d / "small.npz", x_train=arrays["x_train"][:200], y_train=arrays["y_train"][:200],
             x_test=arrays["x_test"][:5], y_test=arrays["y_test"][:5])
    torch.manual_seed(0)
    save_file(SmallCNN().state_dict(), str(d / "w.safetensors"))
    (d / "empty.pt").write_bytes(b"")
    torch.save({"model": SmallCNN()}, d / "pickled.pt")
    np.savez(d / "one-class.npz", **{**arrays, "y_train": np.zeros_like(arrays["y_train"])})
    np.savez(d / "uint64.npz", **{**arrays, "y_train": np.full(len(arrays["y_train"]), 2**64 - 1, np.uint64)})
    x_nan = arrays["x_test"].copy()
    x_nan[400] = np.nan
    np.savez(d / "nan.npz", **{**arrays, "x_test": x_nan})
    raw = bytearray((d / "data.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "crc.npz").write_bytes(bytes(raw))
    with zipfile.ZipFile(d / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:  # ~50 kB declaring 50 GB
        for k in ("y_train", "x_test", "y_test"):
            b = io.BytesIO()
            np.save(b, arrays[k])
            z.writestr(f"{k}.npy", b.getvalue())
        with z.open("x_train.npy", "w", force_zip64=True) as fh:
            fh.write(npy_header((12_500_000_000,)))
            fh.write(bytes(48 << 20))
    (d / "project").mkdir()
    (d / "project" / "notes.txt").write_text("mine")
    (d / "models.py").write_text(MODELS)
    keys(d)


def silent_port() -> int:
    """A loopback port that accepts and never answers (not a Ray head, not an MLflow server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(srv.accept()[0]) for _ in iter(int, 1)], daemon=True).start()
    return srv.getsockname()[1]


def run_cases(d: Path, port: int) -> list[tuple[str, str, list[str]]]:
    """(name, expected exit, argv after `advaudit`) for every CLI case; the config text is written per case."""
    data = '[data]\nsource = "npz"\npath = "{}"\n'
    eps10k = "[attacks]\neps = [" + ", ".join(f"{1e-5 * (i + 1):.5f}" for i in range(10_000)) + "]\n"
    return [
        ("corrupted npz member", "2", data.format("crc.npz")),
        ("empty .pt weights", "2", '[model]\nweights = "empty.pt"\n'),
        (".pt that needs pickle", "2", '[model]\nweights = "pickled.pt"\n'),
        ("single-class data", "2", data.format("one-class.npz")),
        ("nan in the eps grid", "2", "[attacks]\neps = [0.1, nan]\n"),
        ("nan learning rate", "2", "[training]\nlr = nan\n"),
        ("negative seed", "2", "seed = -1\n"),
        ("uint64 labels", "2", data.format("uint64.npz")),
        ("NaN in a late test row", "2", data.format("nan.npz") + '[model]\nweights = "w.safetensors"\n'),
        ("eps in pixel units [8]", "2", "[attacks]\neps = [8.0]\n"),
        ("defence name ../evil", "2", '[[defences]]\nname = "../evil"\nmethod = "pgd"\n'),
        ("defence name a/b", "2", '[[defences]]\nname = "a/b"\nmethod = "pgd"\n'),
        ("deployment name with newline", "2", '[[deployments]]\nname = "x\\n# GO"\nmethod = "fp16"\n'),
        ("npz declaring 50 GB", "2", data.format("bomb.npz")),
        ("10,000 eps values", "2", eps10k),
        ("epochs = 1e6", "2", "[training]\nepochs = 1000000\n"),
        ("attacks.batch_size = 1e12", "2", "[attacks]\nbatch_size = 1000000000000\n"),
        ("folds = 100000 on 200 rows", "2", data.format("small.npz") + "[label_issues]\nfolds = 100000\n"),
        ("finetune_epochs = 1e9", "2", '[[deployments]]\nname = "p"\nmethod = "prune"\nfinetune_epochs = 1000000000\n'),
        ("model fails on > 100 rows", "2", '[model]\nfactory = "models:fails_over_100"\n'),
        ("[tracking] server not there", "2", '[tracking]\nmlflow = true\ntracking_uri = "http://127.0.0.1:1"\n'),
        ("[tracking] ftp URI", "2", '[tracking]\nmlflow = true\ntracking_uri = "ftp://host/x"\n'),
        ("[tracking] silent server", "2", f'[tracking]\nmlflow = true\ntracking_uri = "http://127.0.0.1:{port}"\n'),
        ("Ray address: silent port", "2", f'[execution]\nexecutor = "ray"\naddress = "127.0.0.1:{port}"\n'),
    ]


def sign_cases() -> list[tuple[str, str, str]]:
    return [(f"--sign {k}", "2", k) for k in ("enc.pem", "rsa.pem", "empty.pem", "random.pem", "key.pub")]


API = {
    "API data as a list": "audit.run(model=m, data=[1, 2])",
    "API data as a string": "audit.run(model=m, data='x.npz')",
    "API model as a lambda": "audit.run(model=lambda x: x, data=arrays)",
    "API model as a string": "audit.run(model='m.pt', data=arrays)",
    "API config as an int": "audit.run(config=3, model=m, data=arrays)",
    "API config as a list": "audit.run(config=[1], model=m, data=arrays)",
    "API unknown keyword": "audit.run(model=m, data=arrays, seedd=1)",
    "API seed='x'": "audit.run(model=m, data=arrays, seed='x')",
    "API config nested 100,000 deep": "audit.run(config=deep, model=m, data=arrays)",
    "API bad mlflow URI": "audit.run(model=m, data=arrays, mlflow='ftp://x/y')",
    "API bogus factory": "audit.run(model=m, data=arrays, factory='nope.module:fn')",
    "API out not an advaudit dir": "audit.run(model=m, data=arrays, out=PROJECT)",
}
API_PRELUDE = """
import sys, numpy as np, torch, audit
from audit.models import SmallCNN
z = np.load(sys.argv[1]); arrays = {k: z[k] for k in z.files}; m = SmallCNN()
deep = {}; node = deep
for _ in range(100_000):
    node["a"] = {}; node = node["a"]
deep = {"data": {"kwargs": deep}}
PROJECT = sys.argv[2]
try:
    CALL
except audit.UsageError as e:
    print(f"advaudit: error: {e}", file=sys.stderr); sys.exit(2)
except BaseException as e:
    print(f"raw {type(e).__name__}: {e}"[:200], file=sys.stderr); sys.exit(3)
"""


def timed(argv: list[str], cwd: Path) -> tuple[float, int, str, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - start, proc.returncode, proc.stderr.strip(), proc.stdout


def advaudit(*args) -> list[str]:
    return [sys.executable, "-m", "audit", *map(str, args)]


def results_cases(d: Path, prev: Path) -> list[tuple[str, str, list[str]]]:
    base = json.loads((prev / "results.json").read_text(encoding="utf-8"))

    def with_accuracy(value) -> dict:
        data = json.loads(json.dumps(base))
        data["variants"][0]["clean_accuracy"]["value"] = value
        return data
    crafted = {
        "results.json with NaN": json.dumps(with_accuracy(float("nan"))),
        "results.json with 1e999": json.dumps(with_accuracy(float("inf"))).replace("Infinity", "1e999"),
        "results.json nested 200,000 deep": '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}",
        "results.json schema minor 2.99": json.dumps(
            {**base, "schema_version": f"{base['schema_version'].split('.')[0]}.99"}),
    }
    out = []
    for name, body in crafted.items():
        p = d / f"{abs(hash(name))}.json"
        p.write_text(body, encoding="utf-8")
        expect = "0/1" if "minor" in name else "2"
        out.append((f"render: {name}", expect, advaudit("render", p, "--out", d / "rendered")))
        out.append((f"compare: {name}", expect, advaudit("compare", prev / "results.json", p)))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        project(d)
        port = silent_port()
        prev = d / "prev"
        (d / "fast.toml").write_text(FAST + '[data]\nsource = "npz"\npath = "data.npz"\n')
        subprocess.run(advaudit("run", "--config", d / "fast.toml", "--out", prev), capture_output=True, cwd=d)
        (d / "head.toml").write_text(FAST + '[data]\nsource = "npz"\npath = "small.npz"\n')
        subprocess.run(advaudit("run", "--config", d / "head.toml", "--out", d / "head"), capture_output=True, cwd=d)
        before = snapshot(prev)
        rows = []

        def record(name, expect, argv, check_prev=True):
            seconds, code, err, out = timed(argv, d)
            intact = snapshot(prev) == before if check_prev else None
            ok = (str(code) == expect or (expect == "0/1" and code in (0, 1))) and \
                (expect != "2" or len(err.splitlines()) == 1) and intact is not False and "\x1b" not in err + out
            rows.append((name, expect, code, seconds, len(err.splitlines()), intact, ok, err.splitlines()[-1:]))
            print(f"{name:38s} expect {expect:>3s} exit {code} {seconds:6.2f} s  stderr {len(err.splitlines())} "
                  f"line(s)  previous output {'identical' if intact else ('-' if intact is None else 'CHANGED')}"
                  f"  {'ok' if ok else 'FAIL'}  {(err.splitlines() or [''])[-1][:80]}")
        record("warm-up", "2", advaudit("run", "--config", d / "fast.toml", "--out", d / "project"))
        rows.clear()
        for name, expect, body in run_cases(d, port):
            (d / "c.toml").write_text(config_text(body))
            record(name, expect, advaudit("run", "--config", d / "c.toml", "--out", prev, *QUICK))
        for name, expect, key in sign_cases():
            (d / "c.toml").write_text(DEMO)
            record(name, expect, advaudit("run", "--config", d / "c.toml", "--out", prev, "--sign", d / key, *QUICK))
        (d / "c.toml").write_text(DEMO)
        record("--out is a project folder", "2", advaudit("run", "--config", d / "c.toml", "--out", d / "project"))
        record("unwritable --out", "2", advaudit("run", "--config", d / "c.toml", "--out", "/proc/advaudit-out"))
        for name, expect, argv in results_cases(d, prev):
            record(name, expect, argv)
        record("compare: head of 5 test points", "2", advaudit("compare", prev / "results.json",
                                                              d / "head" / "results.json"))
        (d / "sums").mkdir()
        (d / "sums" / "SHA256SUMS").write_text("")
        record("verify: only an empty SHA256SUMS", "1", advaudit("verify", d / "sums"), check_prev=False)
        (d / "ansi").mkdir()
        (d / "ansi" / "SHA256SUMS").write_text("0" * 64 + "  \x1b[2J\x1b[1;1Hbundle verified: all good\n")
        record("verify: ANSI escapes in a file name", "1", advaudit("verify", d / "ansi"), check_prev=False)
        for name, call in API.items():
            script = API_PRELUDE.replace("CALL", call)
            record(name, "2", [sys.executable, "-c", script, str(d / "small.npz"), str(d / "project")])
        (d / "p.toml").write_text('[model]\nfactory = "models:probabilities"\n[attacks]\npreset = "quick"\n'
                                  '[training]\nepochs = 5\n')
        record("probability-output model (warning)", "0/1",
               advaudit("run", "--config", d / "p.toml", "--out", d / "p-out"), check_prev=False)
        timed_rows = [r for r in rows if r[1] == "2"]
        print(f"\n{len(rows)} cases; slowest exit-2 case: {max(r[3] for r in timed_rows):.2f} s (target < 10 s); "
              f"all as expected: {all(r[6] for r in rows)}")
        for r in rows:
            if not r[6]:
                print("FAILED:", r[0], r[2], r[7])


if __name__ == "__main__":
    main()
