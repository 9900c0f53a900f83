"""Metrics of every benchmark protocol of the paper, one evaluator class per protocol.

Modules:
- ``base``: the ``Evaluator`` interface (reset / process / evaluate, records / load_records for
  distributed runs, ``merge_records``), input checks, the float32 threshold rule, the official query
  order and the no-target decision rules;
- ``overlap``: box IoU / GIoU and mask I/U, the one implementation all evaluators use, with the guarded
  divisions;
- ``rec`` (``RECEvaluator``, "rec"), ``res`` (``RESEvaluator``, "res"), ``grec`` (``GRECEvaluator``,
  "grec"), ``gres`` (``GRESEvaluator``, "gres"), ``refzom`` (``RefZOMEvaluator``, "refzom"),
  ``rrefcoco`` (``RRefCOCOEvaluator``, "rrefcoco"): one protocol each, its exact rules, options, guards,
  record fields and result keys in the module docstring;
- ``registry``: ``build_evaluator(name, **options)``.

Inputs are ``instancevg.structures.Prediction`` / ``Target`` at the evaluation resolution; numpy only.
"""
from .base import Evaluator, merge_records
from .grec import GRECEvaluator
from .gres import GRESEvaluator
from .rec import RECEvaluator
from .refzom import RefZOMEvaluator
from .registry import EVALUATORS, available_evaluators, build_evaluator, evaluator_options
from .res import RESEvaluator
from .rrefcoco import RRefCOCOEvaluator

__all__ = [
    "Evaluator", "merge_records", "RECEvaluator", "RESEvaluator", "GRECEvaluator", "GRESEvaluator",
    "RefZOMEvaluator", "RRefCOCOEvaluator", "EVALUATORS", "available_evaluators", "build_evaluator",
    "evaluator_options",
]
