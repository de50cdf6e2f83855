"""What every check is: an id, a title, a scope, the framework items it gives evidence for, and ``measure``.

scope "variant": measured once per trained variant (``measure(ctx, variant)``);
scope "data": measured once per run (``measure(ctx, None)``).
A check returns numbers and tables only; the policy judges them (audit/judge.py).
"""
from __future__ import annotations

from typing import Protocol

from audit.context import Context
from audit.result import Control, Measurement


class Check(Protocol):
    id: str
    title: str
    scope: str
    controls: tuple[Control, ...]
    description: str

    def measure(self, ctx: Context, variant: str | None) -> Measurement: ...


def controls(**pairs: str) -> tuple[Control, ...]:
    """controls(MEASURE_2_3="direct") -> (Control("MEASURE 2.3", "direct"),)."""
    out = []
    for key, strength in pairs.items():
        fn, _, rest = key.partition("_")
        out.append(Control(f"{fn} {rest.replace('_', '.')}", strength))
    return tuple(out)
