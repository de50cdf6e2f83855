"""Hugging Face and timm classifiers: output objects reduced to logits by the adapter, normalisation declared in
[input]; the examples/hf model is built offline (random weights from a config: no download; its audit runs in
tests/test_examples.py)."""
from __future__ import annotations

import importlib.util
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from audit.models.adapters import input_wrapper, returns_logits

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hf"
Output = namedtuple("Output", "logits hidden")


class ObjectOut(torch.nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.lin, self.kind = torch.nn.Linear(4, 3), kind

    def forward(self, x):
        z = self.lin(x)
        return {"object": Output(z, None), "tuple": (z, x), "dict": {"logits": z, "aux": x}, "tensor": z}[self.kind]


@pytest.mark.parametrize("kind", ["object", "tuple", "dict", "tensor"])
def test_every_output_shape_becomes_the_logits_and_gradients_flow(kind):
    torch.manual_seed(0)
    m = returns_logits(ObjectOut(kind))
    keys = set(m.state_dict())
    x = torch.randn(5, 4, requires_grad=True)
    out = m(x)
    assert isinstance(out, torch.Tensor) and out.shape == (5, 3)
    out.sum().backward()
    assert x.grad is not None and set(m.state_dict()) == keys  # weights' keys untouched: checkpoints still load
    assert returns_logits(m) is m and len(m._forward_hooks) == 1  # idempotent


def test_a_transformers_vit_from_its_config_is_audited_in_input_units():
    pytest.importorskip("transformers")
    import importlib.util as iu
    spec = iu.spec_from_file_location("advaudit_hf_example_model", EXAMPLE / "model.py")
    module = iu.module_from_spec(spec)
    spec.loader.exec_module(module)
    build = module.build
    vit = build(num_classes=10, image_size=8).eval()
    from audit.config.sections import InputConfig
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        direct = vit(pixel_values=(x - 0.5) / 0.5).logits  # what transformers returns: an output object
    wrapped = input_wrapper(vit, InputConfig(clip=(0.0, 1.0), mean=(0.5,), std=(0.5,)), "image", (1, 8, 8), {})
    assert torch.allclose(wrapped(x), direct, atol=1e-5)  # the processor's normalisation inside the graph


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("timm") is None or importlib.util.find_spec("torchvision") is None,
                    reason="timm needs torchvision, which has no wheel for the CPU torch 2.13 here (REFERENCE §14); "
                           "run on the GPU machine, whose image has both")
def test_a_timm_model_from_its_config_goes_through_the_same_path(digits):
    import timm

    import audit
    model = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    arrays = {k: getattr(digits, k).numpy() for k in ("x_train", "y_train", "x_test", "y_test")}
    result = audit.run(model=model.eval(), data=arrays, config={
        "threat_model": {"eps": 0.1}, "attacks": {"preset": "quick"},
        "checks": ["input_validation", "clean_accuracy", "robustness"]})
    assert result.verdict in ("NO-GO", "INCOMPLETE")  # narrowed checks and the quick preset: never GO
    assert set(result.robustness_table()["attack"]) >= {"pgd"}
