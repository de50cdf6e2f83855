"""The user's own model and data through `advaudit run`: every bad input is one line on stderr and exit 2,
never a traceback, and nothing already written is lost."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audit.cli import main
from audit.models.reference import SmallCNN
from tests.helpers import previous_output, snapshot

FAST = 'checks = ["input_validation", "clean_accuracy"]\n'


def write_config(d, body: str):
    path = d / "advaudit.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path, digits):
    """A user project: data.npz (a digits subset), weights.safetensors of a SmallCNN, and a config writer."""
    x_tr, y_tr = digits.x_train[:120].numpy(), digits.y_train[:120].numpy()
    x_te, y_te = digits.x_test[:60].numpy(), digits.y_test[:60].numpy()
    np.savez(tmp_path / "data.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    torch.manual_seed(0)
    save_file(SmallCNN().state_dict(), str(tmp_path / "weights.safetensors"))

    def config(data='source = "npz"\npath = "data.npz"', model='factory = "audit.models:build_small_cnn"\n'
               'weights = "weights.safetensors"', extra=""):
        return write_config(tmp_path, f"{FAST}{extra}\n[data]\n{data}\n[model]\n{model}\n")
    return tmp_path, config


def no_training(*_a, **_k):
    raise AssertionError("a bad input reached training")


def run(cfg, out, capsys, *extra):
    code = main(["run", "--config", str(cfg), "--out", str(out), *extra])
    return code, capsys.readouterr().err


def bad_npz(d, **changes):
    base = dict(np.load(d / "data.npz"))
    base.update(changes)
    np.savez(d / "bad.npz", **base)
    return 'source = "npz"\npath = "bad.npz"'


def test_a_good_project_runs_and_records_the_weights_hash(project, capsys):
    d, config = project
    code, err = run(config(), d / "out", capsys)
    assert code in (0, 1, 4), err
    import json
    r = json.loads((d / "out" / "results.json").read_text())
    from audit.evidence.manifest import sha256_file
    assert r["model"]["file_sha256"] == sha256_file(d / "weights.safetensors")
    assert r["dataset"]["n_train"] == 120 and r["dataset"]["source"] == "npz"
    assert r["variants"][0]["description"].startswith("the model as supplied")


CASES = {
    "missing data file": (lambda d: dict(data='source = "npz"\npath = "nope.npz"'), "not found"),
    "unreadable data file": (lambda d: ((d / "junk.npz").write_bytes(b"not a zip"),
                                        dict(data='source = "npz"\npath = "junk.npz"'))[1], "not a readable .npz"),
    "missing weights": (lambda d: dict(model='factory = "audit.models:build_small_cnn"\nweights = "w.pt"'),
                        "file not found"),
    "shape mismatch": (lambda d: dict(data=bad_npz(d, x_train=np.zeros((20, 3, 8, 8), np.float32),
                                                   x_test=np.zeros((10, 3, 8, 8), np.float32),
                                                   y_train=np.arange(20) % 10, y_test=np.arange(10) % 10)),
                       "model/data mismatch"),
    "NaN input": (lambda d: dict(data=bad_npz(d, x_test=np.where(np.arange(60)[:, None, None, None] == 7, np.nan,
                                                                 np.load(d / "data.npz")["x_test"]))),
                  "NaN or Inf (first: row 7)"),
    "Inf input": (lambda d: dict(data=bad_npz(d, x_train=np.full((120, 1, 8, 8), np.inf, np.float32))),
                  "NaN or Inf"),
    "label out of range": (lambda d: dict(data=bad_npz(d, y_test=np.full(60, 12))), "out of range"),
    "labels not integers": (lambda d: dict(data=bad_npz(d, y_train=np.full(120, 1.5))), "labels must be integers"),
    "negative labels": (lambda d: dict(data=bad_npz(d, y_train=np.full(120, -1))), "labels must be >= 0"),
    "class count disagrees": (lambda d: dict(data='source = "npz"\npath = "data.npz"\nnum_classes = 12'),
                              "model outputs 10 classes"),
    "empty split": (lambda d: dict(data=bad_npz(d, x_test=np.zeros((0, 1, 8, 8), np.float32),
                                                y_test=np.zeros(0, np.int64))), "split is empty"),
    "inputs outside clip": (lambda d: dict(data=bad_npz(d, x_train=np.full((120, 1, 8, 8), 255.0, np.float32))),
                            "rescale the data"),
    "eps in pixel units": (lambda d: dict(extra="[attacks]\neps = [8.0]"), "8/255"),
    "weights of another model": (lambda d: (save_file(SmallCNN(width=16).state_dict(), str(d / "w16.safetensors")),
                                            dict(model='factory = "audit.models:build_small_cnn"\n'
                                                       'weights = "w16.safetensors"'))[1], "does not fit"),
    "factory not importable": (lambda d: dict(model='factory = "no_such_module:build"'), "cannot import module"),
    "object arrays in npz": (lambda d: dict(data=bad_npz(d, y_test=np.array([{"a": 1}] * 60, dtype=object))),
                             "object arrays"),
    # issue 15's classes, each named for what broke the promise before
    "corrupted npz member (CRC)": (lambda d: dict(data=corrupt_npz(d)), "corrupted"),
    "empty .pt": (lambda d: ((d / "empty.pt").write_bytes(b""),
                             dict(model='factory = "audit.models:build_small_cnn"\nweights = "empty.pt"'))[1],
                  "model.weights"),
    "tabular test split with another column count": (lambda d: dict(data=bad_npz(
        d, x_train=np.zeros((120, 30), np.float32), x_test=np.zeros((60, 29), np.float32)),
        model='factory = "audit.models:build_mlp"\nkwargs = { in_features = 30, num_classes = 10 }'), "(29,)"),
    "single-class data set": (lambda d: dict(data=bad_npz(d, y_train=np.zeros(120, np.int64),
                                                         y_test=np.zeros(60, np.int64))), "at least 2"),
    "nan in the eps grid": (lambda d: dict(extra="[attacks]\neps = [0.1, nan]"), "not a finite number"),
    "nan learning rate": (lambda d: dict(extra="[training]\nlr = nan"), "training.lr: nan is not a finite number"),
    "negative seed": (lambda d: dict(extra="seed = -1"), "seed: -1"),
    "uint64 labels that wrap": (lambda d: dict(data=bad_npz(d, y_train=np.full(120, 2**64 - 1, np.uint64))),
                                "too large"),
    "huge float labels that wrap": (lambda d: dict(data=bad_npz(d, y_train=np.full(120, 1e20))), "too large"),
    "NaN logits past the pre-flight probe": (lambda d: nan_logits_case(d), "NaN or Inf logits on test row 80"),
    ".pt2 exposing no parameters": (lambda d: dict(model=f'archive = "{export_no_params(d)}"'),
                                    "no parameters"),
}


def corrupt_npz(d) -> str:
    """A copy of data.npz with one byte of a member's data flipped: its CRC no longer matches."""
    raw = bytearray((d / "data.npz").read_bytes())
    import zipfile
    with zipfile.ZipFile(d / "data.npz") as z:
        info = z.getinfo("x_test.npy")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    raw[at] ^= 0xFF
    (d / "crc.npz").write_bytes(bytes(raw))
    return 'source = "npz"\npath = "crc.npz"'


class NanOnBright(SmallCNN):
    def forward(self, x):
        out = super().forward(x)
        return torch.where(x.flatten(1).mean(1, keepdim=True) > 0.99, torch.full_like(out, float("nan")), out)


def build_nan_on_bright():
    return NanOnBright()


def nan_logits_case(d) -> dict:
    x = np.random.default_rng(0).random((100, 1, 8, 8)).astype(np.float32) * 0.5
    x[80] = 1.0
    return dict(data=bad_npz(d, x_test=x, y_test=np.arange(100) % 10),
                model=f'factory = "{__name__}:build_nan_on_bright"\nweights = "weights.safetensors"')


class NoParameters(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] * 2.0


def export_no_params(d) -> str:
    ep = torch.export.export(NoParameters(), (torch.rand(2, 1, 8, 8),),
                             dynamic_shapes={"x": {0: torch.export.Dim("b")}})
    torch.export.save(ep, str(d / "np.pt2"))
    return "np.pt2"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2_and_keeps_previous_output(project, capsys, case, monkeypatch):
    d, config = project
    out = d / "out"
    before = previous_output(out)
    make, fragment = CASES[case]
    monkeypatch.setattr("audit.methods.jobs.train", no_training)
    code, err = run(config(**make(d)), out, capsys)
    assert code == 2, err
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(out) == before  # nothing lost or half-written
    assert [p.name for p in d.iterdir() if p.name.startswith(".out")] == []  # no temporary leftovers


class Probabilities(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = SmallCNN()

    def forward(self, x):
        return torch.softmax(self.net(x), 1)


class Noisy(SmallCNN):
    def forward(self, x):
        return super().forward(x + 0.3 * torch.randn_like(x))


def build_probabilities():
    return Probabilities()


def build_noisy():
    return Noisy()


def test_a_model_that_returns_probabilities_is_warned_about(project, capsys):
    d, config = project
    torch.manual_seed(0)
    save_file(Probabilities().state_dict(), str(d / "p.safetensors"))
    code, err = run(config(model=f'factory = "{__name__}:build_probabilities"\nweights = "p.safetensors"'),
                    d / "out", capsys)
    assert code in (0, 1, 4), err
    import json
    r = json.loads((d / "out" / "results.json").read_text())
    f = next(f for f in r["findings"] if f["check"] == "input_validation")
    assert f["status"] == "warn" and "probabilities" in f["summary"]


def test_a_non_deterministic_model_is_refused(project, capsys):
    d, config = project
    save_file(Noisy().state_dict(), str(d / "n.safetensors"))
    code, err = run(config(model=f'factory = "{__name__}:build_noisy"\nweights = "n.safetensors"'), d / "o", capsys)
    assert code == 2 and "non-deterministic" in err


def test_an_archive_saved_in_train_mode_is_audited_in_eval_mode_with_a_warning(project, capsys):
    d, config = project
    torch.manual_seed(0)
    model = torch.nn.Sequential(SmallCNN(), torch.nn.Dropout(0.5)).train()
    torch.jit.script(model).save(str(d / "model.ts"))
    code, err = run(config(model='archive = "model.ts"'), d / "out", capsys)
    assert code in (0, 1, 4), err  # dropout would make it non-deterministic had it stayed in train mode
    import json
    r = json.loads((d / "out" / "results.json").read_text())
    f = next(f for f in r["findings"] if f["check"] == "input_validation")
    assert f["status"] == "warn" and "train mode" in f["summary"]


class Payload:
    """Unpickling this creates a file: the proof that loading ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_is_refused_and_never_executed(project, capsys):
    d, config = project
    marker = d / "PWNED"
    with open(d / "evil.pt", "wb") as fh:
        pickle.dump({"weight": Payload(marker)}, fh)
    torch.save({"weights": Payload(marker)}, d / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        code, err = run(config(model=f'factory = "audit.models:build_small_cnn"\nweights = "{name}"'),
                        d / "out", capsys)
        assert code == 2 and "needs full unpickling" in err and "trust_pickle" in err
    assert not marker.exists()


def test_trust_pickle_loads_a_whole_pickled_module_when_the_user_opts_in(project, capsys):
    d, config = project
    torch.manual_seed(0)
    torch.save(SmallCNN(), d / "full.pt")
    code, err = run(config(model='factory = "audit.models:build_small_cnn"\nweights = "full.pt"'), d / "o1", capsys)
    assert code == 2 and "needs full unpickling" in err
    code, err = run(config(model='factory = "audit.models:build_small_cnn"\nweights = "full.pt"\n'
                                 'trust_pickle = true'), d / "o2", capsys)
    assert code in (0, 1, 4), err


@pytest.mark.parametrize("fmt", ["pt", "ts", "pt2"])
def test_state_dict_torchscript_and_export_archives_give_the_same_logits(project, capsys, fmt):
    d, config = project
    torch.manual_seed(0)
    model = SmallCNN().eval()
    if fmt == "pt":
        torch.save({"state_dict": model.state_dict()}, d / "m.pt")
        spec = 'factory = "audit.models:build_small_cnn"\nweights = "m.pt"'
    elif fmt == "ts":
        torch.jit.trace(model, torch.rand(2, 1, 8, 8)).save(str(d / "m.ts"))
        spec = 'archive = "m.ts"'
    else:
        batch = torch.export.Dim("batch")
        torch.export.save(torch.export.export(model, (torch.rand(2, 1, 8, 8),), dynamic_shapes={"x": {0: batch}}),
                          str(d / "m.pt2"))
        spec = 'archive = "m.pt2"'
    from audit.engine import configure
    from audit.engine.pipeline import build_context, prepare
    ctx = build_context(prepare(configure.load(config(model=spec))))
    x = ctx.data.x_test[:16]
    assert torch.allclose(ctx.variants["baseline"].model(x), model(x), atol=1e-5)


def test_defences_on_an_archive_are_a_config_error(project, capsys):
    d, config = project
    code, err = run(config(model='archive = "m.ts"', extra='[[defences]]\nname = "at"'), d / "o", capsys)
    assert code == 2 and "archive cannot be retrained" in err


def test_set_overrides_any_key_and_unknown_keys_still_fail(project, capsys):
    d, config = project
    cfg = config()
    from audit.config import load_config
    c = load_config(cfg, ["attacks.eps=[0.05, 0.1]", "seed=3", "data.label_column=target"])
    assert c.attacks.eps == (0.05, 0.1) and c.seed == 3 and c.data.label_column == "target"
    code, err = run(cfg, d / "o", capsys, "--set", "attacks.epz=[0.1]")
    assert code == 2 and "attacks.epz: unknown key" in err


def test_input_normalisation_is_inside_the_model_so_eps_stays_in_input_units(project):
    d, config = project
    from audit.engine import configure
    from audit.engine.pipeline import build_context, prepare
    cfg = config(extra="[input]\nmean = [0.5]\nstd = [0.25]")
    ctx = build_context(prepare(configure.load(cfg)))
    wrapped = ctx.variants["baseline"].model
    x = ctx.data.x_test[:8]
    assert torch.allclose(wrapped(x), wrapped.model((x - 0.5) / 0.25), atol=1e-6)
    assert ctx.data.clip == (0.0, 1.0)
    assert os.path.basename(str(cfg)) == "advaudit.toml"


def test_a_policy_gate_outside_the_eps_grid_is_a_usage_error(project, capsys):
    d, config = project
    cfg = write_config(d, 'checks = ["robustness"]\n[attacks]\neps = [0.05]\n[data]\nsource = "npz"\n'
                          'path = "data.npz"\n[model]\nweights = "weights.safetensors"\n')
    code, err = run(cfg, d / "o", capsys)
    assert code == 2 and "judges robustness at eps 0.1" in err


def test_paths_in_the_config_are_relative_to_the_config_file(project, capsys, monkeypatch, tmp_path_factory):
    d, config = project
    (d / "strict.toml").write_text('name = "strict"\n[gates.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.99\n')
    cfg = config(extra='policy = "strict.toml"')
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    code, err = run(cfg, d / "out", capsys)
    assert code == 1, err  # a random model fails the strict policy's gate
    import json
    assert json.loads((d / "out" / "results.json").read_text())["policy"]["name"] == "strict"
    assert (d / "out" / "policy.toml").read_text() == (d / "strict.toml").read_text()
    assert (d / "out" / "config.toml").read_bytes() == cfg.read_bytes()


def test_a_defended_checkpoint_the_user_trained_is_audited_without_training(project, capsys):
    d, config = project
    cfg = config(extra='candidate = "their_at"\n[[defences]]\nname = "their_at"\nweights = "weights.safetensors"')
    code, err = run(cfg, d / "out", capsys)
    assert code in (0, 1, 4), err
    import json
    r = json.loads((d / "out" / "results.json").read_text())
    v = {x["name"]: x for x in r["variants"]}
    assert set(v) == {"baseline", "their_at"} and v["their_at"]["train_epochs"] is None
    assert "supplied by the user" in v["their_at"]["description"]
    assert (d / "out" / "models" / "their_at.safetensors").is_file()


@pytest.mark.slow
def test_every_recipe_is_accepted_from_the_config_and_trains(project, capsys):
    d, config = project
    recipes = "\n".join(f'[[defences]]\nname = "{n}"\n{body}' for n, body in [
        ("trades", 'method = "trades"\nsteps = 2\nbeta = 3.0'), ("fast", 'method = "fgsm_rs"'),
        ("regs", 'method = "none"\nweight_decay = 0.001\nl1 = 1e-6\nlabel_smoothing = 0.1\nmixup_alpha = 0.2\n'
                 'input_noise = 0.05\ngrad_clip = 1.0')])
    cfg = write_config(d, f'{FAST}[training]\nepochs = 1\n[data]\nsource = "npz"\npath = "data.npz"\n{recipes}\n')
    code, err = run(cfg, d / "out", capsys)
    assert code in (0, 1, 4), err
    import json
    r = json.loads((d / "out" / "results.json").read_text())
    assert {v["name"] for v in r["variants"]} == {"baseline", "trades", "fast", "regs"}
    assert all(v["train_epochs"] == 1 for v in r["variants"])
