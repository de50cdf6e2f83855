"""advaudit: adversarial-robustness and data-poisoning audit suite for PyTorch classifiers.

The package root stays light: ``import audit`` imports neither torch nor any room.
"""
from audit.core.version import __version__

__all__ = ["__version__"]
