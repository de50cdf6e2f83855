"""The GPU suite (`pytest -m gpu`): attacks, trainers and the pipeline on CUDA. bf16 autocast and channels-last give
the fp32 answer within a few points; device-side generators make a seeded run repeat exactly; the inner loops do not
synchronise with the host (the number of synchronisations does not grow with the steps or the batches)."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from attacks.adversaries import Adversary
from attacks.apgd import apgd_ce
from attacks.fab import fab
from attacks.pgd import pgd
from attacks.recipes import Recipe
from attacks.square import square
from attacks.training import train
from audit.models.reference import SmallCNN

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")
EPS = 0.1


@pytest.fixture(autouse=True, scope="module")
def deterministic_kernels():
    """cuDNN picks deterministic kernels (its autotuner may pick atomics-based ones that reorder sums)."""
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags


@pytest.fixture(scope="module")
def gpu_model(trained_cnn):
    m = SmallCNN().to(CUDA)
    m.load_state_dict(trained_cnn.state_dict())
    return m.eval()


@pytest.fixture(scope="module")
def gpu_batch(digits):
    return digits.x_test[:256].to(CUDA), digits.y_test[:256].to(CUDA)


def robust_acc(model, x_adv, y) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).float().mean())


def gen(seed=0):
    return torch.Generator(device=CUDA).manual_seed(seed)


ATTACKS = {
    "pgd": lambda m, x, y, g: pgd(m, x, y, eps=EPS, steps=10, generator=g),
    "pgd-early": lambda m, x, y, g: pgd(m, x, y, eps=EPS, steps=10, early_stop=True, generator=g),
    "apgd-ce": lambda m, x, y, g: apgd_ce(m, x, y, eps=EPS, steps=20, generator=g),
    "square": lambda m, x, y, g: square(m, x, y, eps=EPS, queries=100, generator=g),
    "fab": lambda m, x, y, g: fab(m, x, y, eps=EPS, steps=10, generator=g),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_on_cuda_repeats_under_a_seed_and_matches_the_cpu(name, gpu_model, trained_cnn, gpu_batch):
    x, y = gpu_batch
    a, b = ATTACKS[name](gpu_model, x, y, gen()), ATTACKS[name](gpu_model, x, y, gen())
    assert a.x_adv.device.type == "cuda"
    assert torch.equal(a.x_adv, b.x_adv), "a seeded attack on the GPU must repeat exactly"
    assert (a.x_adv - x).abs().max() <= EPS + 1e-6
    cpu = ATTACKS[name](trained_cnn, x.cpu(), y.cpu(), torch.Generator().manual_seed(0))
    acc_gpu, acc_cpu = robust_acc(gpu_model, a.x_adv, y), robust_acc(trained_cnn, cpu.x_adv, y.cpu())
    assert abs(acc_gpu - acc_cpu) <= 0.05, (acc_gpu, acc_cpu)


@pytest.mark.parametrize("name", ["pgd", "apgd-ce"])
def test_bf16_and_channels_last_give_the_fp32_answer(name, gpu_model, gpu_batch):
    x, y = gpu_batch
    ref = robust_acc(gpu_model, ATTACKS[name](gpu_model, x, y, gen()).x_adv, y)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = ATTACKS[name](gpu_model, x, y, gen()).x_adv
    m_cl = SmallCNN().to(CUDA).to(memory_format=torch.channels_last)
    m_cl.load_state_dict(gpu_model.state_dict())
    cl = ATTACKS[name](m_cl.eval(), x.contiguous(memory_format=torch.channels_last), y, gen()).x_adv
    assert abs(robust_acc(gpu_model, half.float(), y) - ref) <= 0.05
    assert abs(robust_acc(gpu_model, cl, y) - ref) <= 0.02


def synchronisations(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["pgd", "apgd-ce"])
def test_fixed_step_attacks_do_not_synchronise_per_step(name, gpu_model, gpu_batch):
    x, y = gpu_batch
    attack = {"pgd": lambda s: pgd(gpu_model, x, y, eps=EPS, steps=s, generator=gen()),
              "apgd-ce": lambda s: apgd_ce(gpu_model, x, y, eps=EPS, steps=s, generator=gen())}[name]
    attack(5)
    assert synchronisations(lambda: attack(40)) == synchronisations(lambda: attack(10))


def test_adversarial_training_does_not_synchronise_per_batch(digits):
    x, y = digits.x_train[:512].to(CUDA), digits.y_train[:512].to(CUDA)

    def run(n):
        torch.manual_seed(0)
        model = SmallCNN().to(CUDA)
        train(model, x[:n], y[:n], Recipe(epochs=1, batch_size=64, overfit_guard=False, seed=0),
              Adversary("pgd", EPS, steps=3))
    run(128)
    assert synchronisations(lambda: run(512)) == synchronisations(lambda: run(128))


@pytest.mark.parametrize("method", ["pgd", "fgsm_rs", "trades"])
@pytest.mark.parametrize("layout", ["fp32", "bf16+channels_last"])
def test_training_on_cuda_repeats_and_learns(method, layout, digits):
    x, y = digits.x_train.to(CUDA), digits.y_train.to(CUDA)
    recipe = Recipe(epochs=4, batch_size=128, lr=3e-3, precision="bf16" if "bf16" in layout else "fp32",
                    channels_last="channels_last" in layout, overfit_guard=False, seed=3)

    def run():
        torch.manual_seed(0)
        model = SmallCNN().to(CUDA)
        train(model, x, y, recipe, Adversary(method, EPS, steps=5))
        return model
    a, b = run(), run()
    if layout == "fp32":
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
            assert torch.equal(va, vb), f"{k} differs between two seeded runs"
    assert next(a.parameters()).is_contiguous(), "weights handed back in the default layout"
    xt, yt = digits.x_test.to(CUDA), digits.y_test.to(CUDA)
    assert robust_acc(a, xt, yt) > 0.8


def test_pipeline_on_cuda_matches_its_cpu_verdict(tmp_path):
    from audit.cli import main
    out = tmp_path / "out"
    code = main(["demo", "--out", str(out), "--device", "cuda"])
    result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert code in (0, 1)
    assert result["environment"]["device"].startswith("cuda")
    assert result["run_record"]["device"].startswith("cuda")
    assert result["run_record"]["accounted"] >= 0.95
    assert any(s["peak_device_mb"] > 0 for s in result["run_record"]["stages"])
