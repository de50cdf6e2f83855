"""The fast forward twin (attacks/inference.py) and the attack grid's layout rule: used only where they reproduce
the model, rebuilt when the model changes, hooks still called, and a model that cannot take channels-last keeps
its layout."""
import torch
import torch.nn as nn

from attacks import ATTACKS
from attacks.base import frozen_eval
from attacks.inference import prefers_channels_last, scorer
from attacks.targeted import rows_per_batch


class ViewNet(nn.Module):
    """Flattens with .view, as the PyTorch CIFAR tutorial's LeNet does: it cannot run in channels-last."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(-1, 4 * 6 * 6))


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10)).eval()


def test_a_model_that_flattens_with_view_keeps_its_layout_and_is_attacked():
    x = torch.rand(6, 1, 8, 8)
    assert prefers_channels_last(_cnn(), x)
    assert not prefers_channels_last(ViewNet().eval(), x)
    assert not prefers_channels_last(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), x)   # no convolution


def test_the_twin_keeps_the_models_forward_hooks_and_is_used_with_a_backward_hook():
    model, rows = _cnn(), []
    model.register_forward_hook(lambda m, inp, out: rows.append(inp[0].shape[0]))
    model.register_full_backward_hook(lambda m, gin, gout: None)                       # as the pass counter does
    x = torch.rand(20, 1, 8, 8)
    with frozen_eval(model), torch.no_grad():
        fast = scorer(model, x)
        assert fast is not model
        rows.clear()
        assert torch.allclose(fast(x), model(x), atol=1e-5)
    assert rows == [20, 20]                                                            # the twin's query counted


def test_the_twin_is_rebuilt_after_an_in_place_weight_change():
    model, x = _cnn(), torch.rand(20, 1, 8, 8)
    with frozen_eval(model), torch.no_grad():
        scorer(model, x)
        model[0].weight.data.mul_(-3.0)  # no new tensor, no version bump
        assert torch.allclose(scorer(model, x)(x), model(x), atol=1e-5)


def test_square_leaves_a_train_mode_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10)).train()
    before = model[1].running_mean.clone()
    x, y = torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,))
    ATTACKS["square"](model, x, y, eps=0.2, queries=30, generator=torch.Generator().manual_seed(0))
    assert model.training and torch.equal(model[1].running_mean, before)
    assert int(model[1].num_batches_tracked) == 0


def test_batches_of_runs_stay_within_the_callers_limit_and_the_input_budget():
    small, big = torch.zeros(4, 1, 28, 28), torch.zeros(4, 3, 224, 224)
    assert rows_per_batch(40, small) == 160                          # grown on a CPU for small inputs
    assert rows_per_batch(40, small, max_rows=64) == 64              # never beyond the audit's batch size
    assert rows_per_batch(40, big) == 40                             # large inputs: the caller's batch
    assert rows_per_batch(300, small, max_rows=64) == 300            # never below the caller's batch


def test_fab_t_counts_the_ranking_forward_once(trained_cnn, eval_batch):
    x, y = eval_batch[0][:30], eval_batch[1][:30]
    out = ATTACKS["fab_t"](trained_cnn, x, y, eps=0.05, steps=5, n_targets=2, generator=torch.Generator())
    assert out.forward_passes <= 2 * 5 * 30 + 30 and out.example_passes <= 2 * 5 * 30 + 30
