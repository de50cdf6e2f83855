"""What the audit knows about an attack, in one place: an ``AttackSpec`` beside the attack's code, registered in
``ATTACKS`` (the only list of evasion attacks; a second spec of the same name is an error).

A spec names the attack (``name``: the config key; ``label``: the report's), its function, and its frozen parameter
dataclass: every setting the attack takes, with its default; a setting the ``[attacks]`` config sets names its key
in the field's metadata (``setting(20, "pgd_steps")``). The parameter class also says how the attack describes
itself in the report and what it costs per attacked point. Facts the audit plans by: ``min_classes`` (DLR divides by
z_pi1 - z_pi3), ``images_only`` (square windows need (N, C, H, W)), ``score_based`` (reads logits only, no
gradients) and ``gradient_ascent`` (iterative ascent of a loss: more steps and restarts can only help, so the
convergence check doubles them).

Two ways to call an attack: the function with typed arguments, ``spec.function(model, x, y, Ball(eps, norm, clip),
spec.params(steps=10), generator=g)``, or the spec with keywords, ``spec(model, x, y, eps=..., steps=10,
generator=g)``; a keyword that is neither a field of ``Ball`` nor one of the attack's parameters is a TypeError
naming the valid ones.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from attacks.base import AttackOutput, Ball

BALL_FIELDS = tuple(f.name for f in dataclasses.fields(Ball))


def setting(default, key: str):
    """A parameter field the ``[attacks]`` config sets through ``key`` (e.g. "pgd_steps")."""
    return dataclasses.field(default=default, metadata={"config": key})


def config_keys(params_type) -> dict[str, str]:
    """Parameter field -> its ``[attacks]`` config key, for the fields the config sets."""
    return {f.name: f.metadata["config"] for f in dataclasses.fields(params_type) if "config" in f.metadata}


class MultiTarget:
    """Mixin of a multi-target attack's parameters (put it first among the bases, before the untargeted
    attack's parameters, and declare ``n_targets`` with its default): the report text gains the number of target
    classes, and the cost is the untargeted attack's once per target class."""

    n_targets: int

    def describe(self, label: str) -> str:
        return super().describe(label) + f", {self.n_targets} target classes"  # type: ignore[misc]

    def cost(self) -> tuple[float, float]:
        fb, fwd = super().cost()  # type: ignore[misc]
        return float(fb * self.n_targets), float(fwd * self.n_targets)


@dataclass(frozen=True)
class AttackSpec:
    """One evasion attack. ``function(model, x, y, ball, params, *, generator=None[, target=None]) ->
    AttackOutput``; ``params``: its frozen parameter dataclass, with ``describe(label) -> str`` and ``cost() ->
    (forward+backward, forward)`` passes per attacked point."""

    name: str
    label: str
    function: Callable[..., AttackOutput]
    params: type
    min_classes: int = 2
    images_only: bool = False
    score_based: bool = False
    gradient_ascent: bool = False

    @property
    def param_names(self) -> tuple[str, ...]:
        """The attack's settings (its parameter class's fields)."""
        return tuple(f.name for f in dataclasses.fields(self.params))

    def make(self, **settings):
        """The attack's parameters from keywords; an unknown one is a TypeError naming the valid ones."""
        unknown = sorted(set(settings) - set(self.param_names))
        if unknown:
            raise TypeError(f"attack {self.name!r} has no setting {', '.join(map(repr, unknown))}; valid: "
                            f"{', '.join(BALL_FIELDS + self.param_names)}")
        return self.params(**settings)

    def describe(self, params) -> str:
        """The report's text for this attack at ``params`` ('PGD, 20 steps x 1 restart(s), ...')."""
        return params.describe(self.label)

    def cost(self, params) -> tuple[float, float]:
        """Upper bound of (forward+backward, forward) passes per attacked point at ``params``."""
        return params.cost()

    def __call__(self, model, x, y, *, target=None, generator=None, **settings) -> AttackOutput:
        """The keyword form: ``settings`` are the ball's fields (eps, norm, clip) and the attack's parameters."""
        ball = Ball(**{k: settings.pop(k) for k in BALL_FIELDS if k in settings})
        params = self.make(**settings)
        extra = {} if target is None else {"target": target}
        return self.function(model, x, y, ball, params, generator=generator, **extra)


ATTACKS: dict[str, AttackSpec] = {}


def register(spec: AttackSpec) -> AttackSpec:
    """Add ``spec`` to ``ATTACKS`` (next to the attack's definition); a name registered twice is an error."""
    if spec.name in ATTACKS:
        raise ValueError(f"attack {spec.name!r} is registered twice")
    ATTACKS[spec.name] = spec
    return spec
