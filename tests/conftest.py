"""Shared fixtures: tiny seeded CPU models and data; one real demo run shared by the report and CLI tests."""
from __future__ import annotations

import json

import pytest
import torch

from attacks.training import Recipe, train
from audit.data.sources.builtin import load_digits
from audit.models.reference import SmallCNN

torch.set_num_threads(2)
pytest_plugins = ["tests.watchdog"]   # no test hangs the suite (tests/watchdog.py)


@pytest.fixture(scope="session")
def digits():
    return load_digits(test_fraction=0.25, seed=0)


@pytest.fixture(scope="session")
def trained_cnn(digits):
    """A naturally trained SmallCNN (8 epochs, seeded): accurate and easy to attack."""
    torch.manual_seed(0)
    model = SmallCNN()
    train(model, digits.x_train, digits.y_train, Recipe(epochs=8, lr=2e-3, seed=0))
    return model.eval()


@pytest.fixture
def eval_batch(digits):
    return digits.x_test[:200], digits.y_test[:200]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The real `advaudit demo` through the CLI, once per session: (exit code, output dir, results dict); its stderr
    (the progress lines) in ``stderr.log`` beside the output dir, and echoed."""
    import contextlib
    import io
    import sys

    from audit.cli import main
    out = tmp_path_factory.mktemp("demo") / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["demo", "--out", str(out)])
    (out.parent / "stderr.log").write_text(err.getvalue(), encoding="utf-8")
    sys.stderr.write(err.getvalue())
    return code, out, json.loads((out / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo_result(demo_run):
    from audit.engine.results_io import parse_results
    return parse_results(demo_run[2])


END_TO_END = {"demo_run", "demo_result"}  # fixtures that run the real demo (it trains two models)


def pytest_collection_modifyitems(config, items):
    """A test that needs the real demo run is an end-to-end run: it is ``slow`` (``make test-fast`` leaves it out,
    ``make test`` and CI run it)."""
    for item in items:
        if END_TO_END & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# Harder fixtures on digits28 (tests/fixtures_hard.py): each trained once per session, its checkpoint under the
# session's temporary directory; ``.model_table()`` / ``.config()`` load it in the CLI or ``audit.run``.
@pytest.fixture(scope="session")
def hard28_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hard28")


@pytest.fixture(scope="session")
def natural28(hard28_dir):
    from tests.fixtures_hard import train_natural28
    return train_natural28(hard28_dir)


@pytest.fixture(scope="session")
def fgsm_overfit28(hard28_dir):
    from tests.fixtures_hard import train_fgsm_overfit28
    return train_fgsm_overfit28(hard28_dir)


@pytest.fixture(scope="session")
def masked28(natural28, hard28_dir):
    from tests.fixtures_hard import make_masked28
    return make_masked28(natural28, hard28_dir)


@pytest.fixture(scope="session")
def undertrained28(hard28_dir):
    from tests.fixtures_hard import train_undertrained28
    return train_undertrained28(hard28_dir)
