"""A Hugging Face image classifier built from its config (random weights: nothing is downloaded). It returns an
output object with ``.logits``, which advaudit's adapter reduces to the logits tensor; its normalisation (the
image processor's mean and std) is declared in advaudit.toml's [input] and applied inside the audited graph."""
from __future__ import annotations


def build(num_classes: int = 10, image_size: int = 8):
    from transformers import ViTConfig, ViTForImageClassification
    config = ViTConfig(image_size=image_size, patch_size=2, num_channels=1, num_labels=num_classes, hidden_size=64,
                       num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ViTForImageClassification(config)
