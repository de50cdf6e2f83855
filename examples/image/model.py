"""The team's image model, as advaudit sees it: a factory that builds the architecture (weights come separately)."""
from torch import nn


class DigitNet(nn.Module):
    """A small CNN for 1x8x8 inputs normalised per channel (the config's input.mean / input.std)."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(width * 16, 64), nn.ReLU())
        self.head = nn.Linear(64, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def build(num_classes: int = 10, width: int = 32) -> nn.Module:
    return DigitNet(num_classes=num_classes, width=width)
