"""Property-based tests of the CLI contract (hypothesis): whatever config values and data arrays a user gives,
the exit code is 0, 1 or 2, never a traceback; an exit 2 is one stderr line; and a previous output directory is
byte-identical afterwards unless the run succeeded."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from audit.cli import main
from audit.models import SmallCNN
from tests.helpers import previous_output, snapshot

pytestmark = pytest.mark.slow
FAST = 'checks = ["input_validation", "clean_accuracy"]\n'
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def base(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("prop")
    np.savez(d / "data.npz", x_train=digits.x_train[:80].numpy(), y_train=digits.y_train[:80].numpy(),
             x_test=digits.x_test[:40].numpy(), y_test=digits.y_test[:40].numpy())
    torch.manual_seed(0)
    save_file(SmallCNN().state_dict(), str(d / "w.safetensors"))
    return d


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def run_and_check(d, config_text: str, capsys, tag: str):
    cfg = d / f"{tag}.toml"
    cfg.write_text(config_text, encoding="utf-8")
    out = d / f"out-{tag}"
    if not out.exists():
        previous_output(out)
    before = snapshot(out)
    code = main(["run", "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert code in (0, 1, 2, 4), err
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert snapshot(out) == before
    return code


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.integers(min_value=-(2**70), max_value=2**70))


@SETTINGS
@given(eps=st.lists(numbers, min_size=0, max_size=4), lr=numbers, epochs=numbers, seed=numbers,
       test_fraction=numbers, clip=st.lists(numbers, min_size=0, max_size=3), batch=numbers,
       threshold=numbers)
def test_any_config_values_give_0_1_or_2_and_never_lose_the_previous_output(base, capsys, eps, lr, epochs, seed,
                                                                           test_fraction, clip, batch, threshold):
    body = (f"{FAST}seed = {toml_value(seed)}\n[attacks]\neps = {toml_value(eps)}\nbatch_size = {toml_value(batch)}\n"
            f"[training]\nlr = {toml_value(lr)}\nepochs = {toml_value(epochs)}\n"
            f"[data]\nsource = \"npz\"\npath = \"data.npz\"\ntest_fraction = {toml_value(test_fraction)}\n"
            f"[input]\nclip = {toml_value(clip)}\n[model]\nweights = \"w.safetensors\"\n"
            f"[leakage]\nquantile = {toml_value(threshold)}\n")
    run_and_check(base, body, capsys, "cfg")


dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, np.uint64, np.bool_])
special = st.sampled_from([0.0, 1.0, 0.5, -1.0, 255.0, math.nan, math.inf, -math.inf, 1e20, 2.0**64])


@st.composite
def arrays(draw):
    n_train, n_test = draw(st.integers(0, 30)), draw(st.integers(0, 12))
    shape = draw(st.sampled_from([(1, 8, 8), (1, 8, 8), (3, 8, 8), (64,), (1, 4, 4)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x_train = rng.random((n_train, *shape))
    x_test = rng.random((n_test, *draw(st.sampled_from([shape, shape, (1, 8, 9)]))))
    if draw(st.booleans()) and x_train.size:
        x_train.flat[draw(st.integers(0, x_train.size - 1))] = draw(special)
    y_train = rng.integers(0, draw(st.integers(1, 12)), n_train).astype(np.float64)
    y_test = rng.integers(0, 10, draw(st.sampled_from([n_test, n_test, max(n_test - 1, 0)]))).astype(np.float64)
    if draw(st.booleans()) and y_train.size:
        y_train[draw(st.integers(0, y_train.size - 1))] = draw(special)
    with np.errstate(all="ignore"):
        return (x_train.astype(draw(dtypes)), y_train.astype(draw(dtypes)), x_test.astype(draw(dtypes)),
                y_test.astype(draw(dtypes)))


@SETTINGS
@given(data=arrays())
def test_any_data_arrays_give_0_1_or_2_and_never_lose_the_previous_output(base, capsys, data):
    x_train, y_train, x_test, y_test = data
    np.savez(base / "fuzz.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    body = f'{FAST}[data]\nsource = "npz"\npath = "fuzz.npz"\n[model]\nweights = "w.safetensors"\n'
    run_and_check(base, body, capsys, "data")
