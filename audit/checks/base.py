"""What every check is, and what it may read from the context.

A check is one file ``audit/checks/<id>.py`` holding one class ``<Id>`` (the id in CamelCase), a subclass of
``VariantCheck`` (measured once per audited variant: ``measure(ctx, variant)``) or ``RunCheck`` (once per run:
``measure(ctx)``), registered with ``@register`` next to its definition. It declares ``id``, ``title``, ``rank``
(its place in the report), ``controls`` (the framework items it gives evidence for), ``description`` and
``Details`` (its frozen details dataclass); the rest has defaults: ``requires`` (check classes whose results it
needs: it is skipped without them), ``after`` (check classes it runs after when they are enabled), ``Config``
(the frozen dataclass of its ``[checks.<id>]`` table), ``by_default`` (enabled when the config lists no checks)
and the hooks others call instead of naming the check: ``compared`` (metrics ``compare`` diffs), ``triage``
(its rows of triage.csv), ``residual_risk`` (its sentence in the report), ``notes`` (bullets under its finding),
``cost`` (its dry-run estimate) and ``not_applicable`` (a reason to skip it before anything is measured).
A check returns numbers and typed details; the policy judges them. Its report partial is
``templates/checks/<id>.html.j2``.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from audit.checks.run_view import RunView as AuditContext  # what a check sees of the run
from audit.core.result import Control, Details, Finding, Measurement


class Scope(str, enum.Enum):
    """Where a check measures. The values are what results.json and the plan have always said."""

    VARIANT = "variant"   # once per audited variant; its findings name the variant
    RUN = "data"          # once per run (the data, the deployments); its findings name no variant


@dataclass(frozen=True)
class NoSettings:
    """The settings of a check that has none: an empty ``[checks.<id>]`` table."""


class CostSheet(Protocol):
    """What a check's ``cost`` hook may read and write in the dry run's estimate (audit/engine/dryrun.py)."""

    config: Any
    n_train: int
    n_test: int
    trainable: bool
    costs: Any   # measured seconds per row: train_row, grad_row, forward_row, small_forward_row, ...

    def add(self, name: str, fb: float = 0.0, fwd: float = 0.0, *, train: bool = False,
            seconds: float | None = None, fwd_cost: float | None = None) -> None: ...
    def attack_sweep(self) -> tuple[float, float, float]: ...


class Check(abc.ABC):
    """One check: what it is (class attributes) and the hooks other parts call instead of naming it."""

    id: ClassVar[str]
    title: ClassVar[str]
    rank: ClassVar[int]                      # its place in the registry, which is the report's order
    scope: ClassVar[Scope]
    description: ClassVar[str]
    controls: ClassVar[tuple[Control, ...]] = ()
    Details: ClassVar[type] = Details
    Config: ClassVar[type] = NoSettings      # the frozen dataclass of its [checks.<id>] table
    requires: ClassVar[tuple[type[Check], ...]] = ()   # skipped unless these measured something
    after: ClassVar[tuple[type[Check], ...]] = ()      # run after these when they are enabled
    by_default: ClassVar[bool] = True        # enabled when the config lists no checks
    compared: ClassVar[tuple[tuple[str, str], ...]] = ()   # (metric, "higher" | "lower"): compare diffs them
    triage_columns: ClassVar[tuple[str, ...]] = ()         # the triage.csv columns its ``triage`` fills
    triage_split: ClassVar[str] = "train"    # the split whose rows it flags: train-row columns come first

    @classmethod
    def needs(cls) -> tuple[str, ...]:
        """The ids of the checks it requires."""
        return tuple(c.id for c in cls.requires)

    @classmethod
    def follows(cls) -> tuple[str, ...]:
        """The ids of every check it runs after (required or not)."""
        return tuple(c.id for c in cls.requires + cls.after)

    def not_applicable(self, ctx: AuditContext) -> str:
        """Why it cannot apply to this run ("" when it can), decided before anything is measured."""
        return ""

    def triage(self, details: Any, row) -> None:
        """Fill its ``triage_columns`` of triage.csv: ``row(split, index)`` is the dict of one data row."""
        return None

    def preflight(self, config: Any, data: Any) -> None:
        """Refuse settings that cannot work on this data (a UsageError naming the key), before anything runs."""
        return None

    def with_threshold(self, m: Measurement, threshold: Any) -> Measurement:
        """The measurement as the judge sees it under the policy's ``threshold`` (e.g. where the metric crosses the
        threshold). The judge calls it; ``measure`` never reads the policy."""
        return m

    def residual_risk(self, finding: Finding) -> str:
        """Its sentence in the report's residual risk ("" for none)."""
        return ""

    def notes(self, finding: Finding) -> tuple[str, ...]:
        """Bullets shown under its finding in the report's findings table."""
        return ()

    def gates_from_any_variant(self, m: Measurement) -> bool:
        """True when this measurement of a variant that is not the candidate must gate the verdict all the same
        (it shows the run's own measuring broken, which the candidate's numbers rest on too)."""
        return False


class VariantCheck(Check):
    """A check measured once per audited variant."""

    scope: ClassVar[Scope] = Scope.VARIANT

    @abc.abstractmethod
    def measure(self, ctx: AuditContext, variant: str) -> Measurement: ...

    def not_applicable_to(self, ctx: AuditContext, variant: str) -> str:
        """Why it cannot apply to this one variant ("" when it can): a skip that is no missing evidence."""
        return ""

    def cost(self, sheet: CostSheet, variant: str) -> None:
        """Add its stages of one variant to the dry run's estimate (none: too cheap to matter)."""


class RunCheck(Check):
    """A check measured once per run (the data, or every deployment at once)."""

    scope: ClassVar[Scope] = Scope.RUN

    @abc.abstractmethod
    def measure(self, ctx: AuditContext) -> Measurement: ...

    def cost(self, sheet: CostSheet) -> None:
        """Add its stages to the dry run's estimate (none: too cheap to matter)."""


REGISTERED: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: put one instance of ``cls`` in the registry (``audit.checks.CHECKS``). An id or a rank
    taken twice is a programming error (ValueError)."""
    if cls.id in REGISTERED:
        raise ValueError(f"check id {cls.id!r} is registered twice ({type(REGISTERED[cls.id]).__name__} and "
                         f"{cls.__name__})")
    taken = {c.rank: c.id for c in REGISTERED.values()}
    if cls.rank in taken:
        raise ValueError(f"check {cls.id!r}: rank {cls.rank} is already {taken[cls.rank]!r}'s")
    REGISTERED[cls.id] = cls()
    return cls


def settings(check: Check | type[Check], config: Any) -> Any:
    """The check's ``Config`` from the run's config: its ``[checks.<id>]`` table, which the config holds in the field
    named after the check (``AuditConfig``'s ``CHECK_SETTINGS`` fields); the defaults when there is none."""
    value = getattr(config, check.id, None)
    return value if isinstance(value, check.Config) else check.Config()


def controls(**pairs: str) -> tuple[Control, ...]:
    """controls(MEASURE_2_3="direct") -> (Control("MEASURE 2.3", "direct"),)."""
    out = []
    for key, strength in pairs.items():
        fn, _, rest = key.partition("_")
        out.append(Control(f"{fn} {rest.replace('_', '.')}", strength))
    return tuple(out)
