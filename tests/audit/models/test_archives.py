"""No file from the user is ever unpickled unless model.trust_pickle is set: a crafted file for every container
(a raw pickle, a zip ``.pt``, TorchScript, ``.pt2`` with pickled weights, a pickled constant, a member that only
loads through torch's weights_only=False fallback, ``.npz``/``.npy`` object arrays) exits 2 and its payload never
runs; the same archives' honest versions load."""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audit.cli import main
from audit.models import SmallCNN


class Payload:
    """Unpickling this creates a directory: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def rewrite_zip(src, dst, replace: dict[str, bytes]):
    """A copy of zip ``src`` with some members' bytes replaced (names matched by suffix)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            for suffix, new in replace.items():
                if item.filename.endswith(suffix):
                    data = new
            zout.writestr(item, data)


@pytest.fixture
def project(tmp_path, digits):
    np.savez(tmp_path / "data.npz", x_train=digits.x_train[:60].numpy(), y_train=digits.y_train[:60].numpy(),
             x_test=digits.x_test[:30].numpy(), y_test=digits.y_test[:30].numpy())
    torch.manual_seed(0)
    model = SmallCNN().eval()
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    ep = torch.export.export(model, (torch.rand(2, 1, 8, 8),), dynamic_shapes={"x": {0: torch.export.Dim("b")}})
    torch.export.save(ep, str(tmp_path / "good.pt2"))
    torch.jit.trace(model, torch.rand(2, 1, 8, 8)).save(str(tmp_path / "good.ts"))
    return tmp_path, tmp_path / "marker"


def run(d, model_lines: str, capsys, data='source = "npz"\npath = "data.npz"', extra=""):
    cfg = d / "advaudit.toml"
    cfg.write_text(f'checks = ["input_validation"]\n{extra}\n[data]\n{data}\n[model]\n{model_lines}\n')
    code = main(["run", "--config", str(cfg), "--out", str(d / "out")])
    return code, capsys.readouterr().err


def crafted(d, marker, kind: str) -> str:
    """Write the crafted file for ``kind``; return the [model] lines that point at it."""
    payload = pickle.dumps(Payload(marker), protocol=2)
    if kind == "raw pickle":
        (d / "w.pkl").write_bytes(payload)
        return 'factory = "audit.models:build_small_cnn"\nweights = "w.pkl"'
    if kind == "zip .pt":
        torch.save({"state_dict": Payload(marker)}, d / "w.pt")
        return 'factory = "audit.models:build_small_cnn"\nweights = "w.pt"'
    if kind == "torchscript data.pkl":
        rewrite_zip(d / "good.ts", d / "bad.ts", {"/data.pkl": payload})
        return 'archive = "bad.ts"'
    buf = io.BytesIO()
    torch.save(Payload(marker), buf)
    with zipfile.ZipFile(d / "good.pt2") as z:
        cfg_name = next(n for n in z.namelist() if n.endswith("weights_config.json"))
        config = json.loads(z.read(cfg_name))
        consts = next(n for n in z.namelist() if n.endswith("constants_config.json"))
    if kind == ".pt2 pickled weight":
        config["config"]["body.0.weight"]["use_pickle"] = True
        rewrite_zip(d / "good.pt2", d / "bad.pt2", {cfg_name: json.dumps(config).encode(),
                                                    "/weights/weight_0": buf.getvalue()})
    elif kind == ".pt2 opaque constant":
        rewrite_zip(d / "good.pt2", d / "bad.pt2", {consts: json.dumps({"config": {"c": {
            "path_name": "opaque_obj_0", "is_param": False, "use_pickle": False}}}).encode()})
        with zipfile.ZipFile(d / "bad.pt2", "a") as z:
            z.writestr(consts.rpartition("/")[0] + "/opaque_obj_0", payload)
    elif kind == ".pt2 weights_only fallback":
        rewrite_zip(d / "good.pt2", d / "bad.pt2", {"sample_inputs/model.pt": buf.getvalue()})
    return 'archive = "bad.pt2"'


KINDS = ["raw pickle", "zip .pt", "torchscript data.pkl", ".pt2 pickled weight", ".pt2 opaque constant",
         ".pt2 weights_only fallback"]


@pytest.mark.parametrize("kind", KINDS)
def test_code_execution_a_crafted_model_file_is_refused_and_its_payload_never_runs(project, capsys, kind):
    d, marker = project
    code, err = run(d, crafted(d, marker, kind), capsys)
    assert code == 2, err
    assert not marker.exists(), "the payload ran"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (d / "out").exists()


@pytest.mark.parametrize("kind", [".pt2 pickled weight", ".pt2 weights_only fallback", "zip .pt"])
def test_trust_pickle_is_the_only_way_past_the_refusal(project, capsys, kind):
    """With trust_pickle the same file is unpickled (the payload runs): the switch is real, and it is the only one."""
    d, marker = project
    lines = crafted(d, marker, kind) + "\ntrust_pickle = true"
    run(d, lines, capsys)
    assert marker.exists()


@pytest.mark.parametrize("lines", ['archive = "good.pt2"', 'archive = "good.ts"',
                                   'factory = "audit.models:build_small_cnn"\nweights = "w.safetensors"'])
def test_honest_archives_still_load(project, capsys, lines):
    d, _ = project
    code, err = run(d, lines, capsys)
    assert code in (0, 1, 4), err


@pytest.mark.parametrize("where", ["data", "pred_probs", "ood"])
def test_code_execution_object_arrays_in_data_files_are_refused(project, capsys, where):
    d, marker = project
    obj = np.array([Payload(marker)] * 30, dtype=object)
    good = dict(np.load(d / "data.npz"))
    model = 'factory = "audit.models:build_small_cnn"\nweights = "w.safetensors"'
    if where == "data":
        np.savez(d / "bad.npz", **{**good, "y_test": obj})
        code, err = run(d, model, capsys, data='source = "npz"\npath = "bad.npz"')
    elif where == "pred_probs":
        np.save(d / "p.npy", obj, allow_pickle=True)
        code, err = run(d, model, capsys, extra='[label_issues]\npred_probs = "p.npy"')
    else:
        np.savez(d / "ood.npz", x=obj)
        code, err = run(d, model, capsys, data='source = "npz"\npath = "data.npz"\nood_path = "ood.npz"')
    assert code == 2 and not marker.exists(), err
