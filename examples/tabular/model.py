"""A tabular model factory: an MLP over standardised features (advaudit standardises the table's features)."""
from torch import nn


def build(in_features: int = 30, num_classes: int = 2, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))
