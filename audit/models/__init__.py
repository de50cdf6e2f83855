"""The models room: safe model loading, input adapters, reference models and embeddings.

The reference models' factories are importable from here, as configs name them (``audit.models:build_small_cnn``).
"""
from audit.models.reference import (
                                    MLP,
                                    MadryCNN,
                                    PreActResNet18,
                                    SmallCNN,
                                    build_madry_cnn,
                                    build_mlp,
                                    build_preact_resnet18,
                                    build_small_cnn,
)

__all__ = ["MLP", "MadryCNN", "PreActResNet18", "SmallCNN", "build_madry_cnn", "build_mlp", "build_preact_resnet18",
           "build_small_cnn"]
