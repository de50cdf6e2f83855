"""The Python API, as a notebook uses it: a model and arrays built in Python, one call, a verdict and DataFrames."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import audit
from attacks.training import Recipe, train
from audit.models.reference import SmallCNN

CONFIG = {"threat_model": {"eps": 0.1}, "attacks": {"preset": "quick"},
          "checks": ["input_validation", "clean_accuracy", "robustness", "calibration", "label_issues"]}


@pytest.fixture(scope="module")
def arrays(digits):
    return {k: getattr(digits, k).numpy() for k in ("x_train", "y_train", "x_test", "y_test")}


@pytest.mark.slow
def test_a_notebook_audits_an_in_memory_model_and_arrays(arrays, tmp_path):
    torch.manual_seed(0)
    model = SmallCNN()
    train(model, torch.from_numpy(arrays["x_train"]), torch.from_numpy(arrays["y_train"]), Recipe(epochs=6, lr=3e-3))
    result = audit.run(model=model.eval(), data=arrays, config=CONFIG, out=tmp_path / "out")
    assert result.verdict in ("NO-GO", "INCOMPLETE") and result.evidence_gaps  # narrowed, quick: never GO
    findings = result.findings_table()
    assert {"clean_accuracy:baseline", "robustness:baseline", "label_issues"} <= set(findings["id"])
    rob = result.robustness_table()
    assert set(rob["attack"]) >= {"fgsm", "pgd"} and rob["robust_accuracy"].between(0, 1).all()
    clean = float(result.variants_table().set_index("variant").loc["baseline", "clean_accuracy"])
    with torch.no_grad():
        mine = float((model(torch.from_numpy(arrays["x_test"])).argmax(1).numpy() == arrays["y_test"]).mean())
    assert clean == pytest.approx(mine)  # the model audited is the one passed in, not a retrained one
    label = next(f for f in result.result.findings if f.check == "label_issues")
    assert "logistic regression" in label.details.method  # no factory given: the proxy, never a wrong architecture
    assert "<caption>" in result._repr_html_() and result.verdict in result._repr_html_()
    assert "<main" in result.to_html() and (tmp_path / "out" / "SHA256SUMS").is_file()
    assert json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))["verdict"] == \
        result.result.verdict.value


def test_bad_arrays_raise_a_one_line_usage_error(arrays):
    bad = dict(arrays, y_test=arrays["y_test"][:-1])
    with pytest.raises(audit.UsageError) as e:
        audit.run(model=SmallCNN(), data=bad, config=CONFIG)
    assert "\n" not in str(e.value)
    with pytest.raises(audit.UsageError, match="x_test"):
        audit.run(model=SmallCNN(), data={k: v for k, v in arrays.items() if k != "x_test"}, config=CONFIG)
    nan = dict(arrays, x_train=np.where(np.arange(arrays["x_train"].size).reshape(arrays["x_train"].shape) == 5,
                                        np.nan, arrays["x_train"]))
    with pytest.raises(audit.UsageError):
        audit.run(model=SmallCNN(), data=nan, config=CONFIG)
