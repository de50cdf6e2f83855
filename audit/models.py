"""Small reference models shipped with the project (the demo's CNN and a tabular MLP)."""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """A two-convolution CNN for small single-channel images (the demo's 8x8 digits).

    Input (N, C, H, W) in [0, 1]; output raw logits (N, num_classes). ``features`` returns the penultimate layer.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 8, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(width * (image_size // 2) ** 2, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLP(nn.Module):
    """A multilayer perceptron for standardised tabular features; outputs raw logits."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_small_cnn(**kwargs) -> nn.Module:
    """Factory in the ``module:function`` form that configs name."""
    return SmallCNN(**kwargs)


def build_mlp(**kwargs) -> nn.Module:
    return MLP(**kwargs)
