"""What every check is, and what it may read from the context.

A check is one file ``audit/checks/<id>.py`` holding a class ``<Id>`` (the id in CamelCase) with ``id``, ``title``,
``scope`` ("variant": measured per audited variant; "data": once per run), ``controls`` (the framework items it
gives evidence for), ``description``, ``requires`` (checks whose results it needs: it is skipped without them),
``after`` (checks it runs after when they are enabled) and ``Details`` (its frozen details dataclass), and a
``measure(ctx, variant) -> Measurement``; optionally ``not_applicable(ctx) -> str``, a reason to skip it before
anything is measured. A check returns numbers and typed details; the policy judges them.
Its report partial is ``templates/checks/<id>.html.j2``.
"""
from __future__ import annotations

from typing import Any, Protocol

from audit.core.result import Control, Measurement


class AuditContext(Protocol):
    """The part of the engine's context checks use (audit/engine/context.py documents each accessor)."""

    config: Any
    policy: Any
    data: Any
    device: Any
    variants: dict
    warnings: list
    user_pred_probs: Any

    @property
    def can_train(self) -> bool: ...
    def seeded(self, offset: int = 0): ...
    def build_model(self): ...
    def logits(self, model, x, batch_size: int = 1024): ...
    def test_logits(self, variant: str): ...
    def clean_correct(self, variant: str): ...
    def test_probabilities(self, variant: str = "baseline"): ...
    def robustness(self, variant: str): ...
    def gated_eps(self) -> float: ...
    def embedding(self, split: str): ...
    def embedding_unavailable(self) -> str: ...
    def corruption_errors(self, variant: str) -> dict: ...
    def input_leaks(self): ...
    def test_label_issues(self): ...
    def label_probabilities(self, compute=None): ...
    def measurement(self, check: str) -> Measurement | None: ...
    def stage(self, name: str): ...


class Check(Protocol):
    id: str
    title: str
    scope: str
    controls: tuple[Control, ...]
    description: str
    requires: tuple[str, ...]
    after: tuple[str, ...]
    Details: type

    def measure(self, ctx: AuditContext, variant: str | None) -> Measurement: ...


def controls(**pairs: str) -> tuple[Control, ...]:
    """controls(MEASURE_2_3="direct") -> (Control("MEASURE 2.3", "direct"),)."""
    out = []
    for key, strength in pairs.items():
        fn, _, rest = key.partition("_")
        out.append(Control(f"{fn} {rest.replace('_', '.')}", strength))
    return tuple(out)
