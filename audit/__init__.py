"""advaudit: adversarial-robustness and data-poisoning audit suite for PyTorch classifiers."""
__version__ = "0.1.0"
