"""advaudit: adversarial-robustness and data-poisoning audit suite for PyTorch classifiers.

The package root stays light: ``import audit`` imports neither torch nor any room; ``audit.run`` loads them.
"""
from audit.core.errors import UsageError
from audit.core.version import __version__


def run(*args, **kwargs):
    """Audit a model in one call: see :func:`audit.api.run.run`."""
    from audit.api.run import run as _run
    return _run(*args, **kwargs)


__all__ = ["UsageError", "__version__", "run"]
