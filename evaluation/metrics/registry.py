"""Evaluator registry: ``build_evaluator(name, **options)`` with the protocol names."""
from __future__ import annotations

import inspect

from .base import Evaluator
from .grec import GRECEvaluator
from .gres import GRESEvaluator
from .rec import RECEvaluator
from .refzom import RefZOMEvaluator
from .res import RESEvaluator
from .rrefcoco import RRefCOCOEvaluator

EVALUATORS: dict[str, type[Evaluator]] = {
    cls.name: cls
    for cls in (RECEvaluator, RESEvaluator, GRECEvaluator, GRESEvaluator, RefZOMEvaluator, RRefCOCOEvaluator)
}


def available_evaluators() -> tuple[str, ...]:
    return tuple(EVALUATORS)


def evaluator_options(name: str) -> dict:
    """The constructor options of evaluator ``name`` with their defaults."""
    cls = _lookup(name)
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"}


def build_evaluator(name: str, **options) -> Evaluator:
    """A fresh evaluator of protocol ``name`` (rec, res, grec, gres, refzom, rrefcoco).

    Unknown names and unknown options raise ValueError naming what is accepted.
    """
    cls = _lookup(name)
    accepted = evaluator_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"evaluator {name!r} has no option {unknown}; accepted options: {sorted(accepted)}")
    return cls(**options)


def _lookup(name: str) -> type[Evaluator]:
    try:
        return EVALUATORS[name]
    except KeyError:
        raise ValueError(f"unknown evaluator {name!r}; expected one of {list(EVALUATORS)}") from None
