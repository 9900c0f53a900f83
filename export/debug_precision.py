"""``instancevg-debug-precision``: where do two graphs of the same model (FP32 vs FP16 export, portable vs
tensorrt target, an ONNX graph vs a TensorRT engine) start to disagree?

    instancevg-debug-precision model.onnx model_fp16.onnx -o report.json
    instancevg-debug-precision model.onnx --engine model_fp16.engine --plugins build/plugins/libinstancevg_plugins.so

Both graphs run on the same inputs with every intermediate tensor marked as an output (Polygraphy's
``ModifyOutputs(outputs=MARK_ALL)``), in ONNX Runtime through Polygraphy's ``OnnxrtRunner`` (TensorRT
engines through its ``TrtRunner``; an engine exposes the tensors it was built to output), collected by
``Comparator.run`` and judged by ``Comparator.compare_accuracy`` with :class:`RangeCompare`. Tensors are
matched by what they compute (:func:`tensor_signatures`: op, precision-free attributes and inputs, down to
the graph inputs and constants known by value, float-to-float Casts transparent): names are no guide, as
the FP16 graph's extra Casts shift the exporter's numbering; engine tensors are matched by name. Walking graph A in topological order, the report names the first
nodes whose output differs beyond tolerance, says whether the error starts there (its inputs agree), and
gives per-tensor statistics: max/mean abs error, error relative to the tensor's range, magnitudes,
NaN/inf counts (an FP16 overflow shows as inf in B where A is finite and above 65504).

A tensor agrees when ``max |A - B| <= atol + rtol * max |A|`` over the elements finite in both, and both
have their NaN/inf at the same places: the criterion of the export verification (export/verify.py),
relative to the tensor's range because FP16 errors scale with magnitudes. Integer and boolean tensors
must be equal.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from instancevg.cli.arguments import (add_output_argument, add_plugins_argument, apply_plugins, check_writable,
                                     make_parser, run_command)

from .ort_session import onnxruntime_session

from engines.onnx_info import custom_nodes, network_inputs
from engines.sidecar import read_sidecar

FP16_MAX = 65504.0
DEFAULT_ATOL, DEFAULT_RTOL = 1e-3, 5e-2


class DebugPrecisionError(ValueError):
    """A user-facing problem (file, argument, inputs); the CLI prints it and exits 2."""


# -- running the graphs -----------------------------------------------------------------------------------

def make_session(model: onnx.ModelProto | bytes | str | os.PathLike):
    """The ONNX Runtime session for one graph (CPU provider): portable graphs as they are, tensorrt-target
    graphs with the plugin kernels as custom operators (export/ort_session.py)."""
    import onnxruntime as ort

    proto = model if isinstance(model, onnx.ModelProto) else (
        onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(os.fspath(model)))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime_session(proto, ["CPUExecutionProvider"], options)
    except RuntimeError as exc:
        raise DebugPrecisionError(f"graph {proto.graph.name or '<model>'!r}: {exc}") from None


def mark_all_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` (types inferred) with every node output marked as a graph output, each with its
    type (Polygraphy takes the types from value_info, where the original outputs are not listed)."""
    from polygraphy import constants
    from polygraphy.backend.onnx import ModifyOutputs

    typed = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    marked = ModifyOutputs(typed, outputs=constants.MARK_ALL, copy=True)()
    original = {o.name: o for o in typed.graph.output}
    for output in marked.graph.output:
        if not output.type.HasField("tensor_type") and output.name in original:
            output.CopyFrom(original[output.name])
    return marked


def sample_feeds(model_path: Path, model: onnx.ModelProto, batch: int | None) -> dict[str, np.ndarray]:
    """Deterministic sample inputs (export/verify.py) for the model config of the graph's sidecar, at
    ``batch`` (default: the sidecar's fixed batch, or the OPT of a dynamic one)."""
    from instancevg.config import ModelConfig

    from .verify import sample_inputs

    try:
        sidecar = read_sidecar(model_path)
        cfg = ModelConfig.from_dict(sidecar["config"])
    except FileNotFoundError as exc:
        raise DebugPrecisionError(f"--inputs sample needs the model config: {exc}; or give --inputs FILE.npz") \
            from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DebugPrecisionError(f"sidecar of {model_path} has no usable 'config' ({exc}); give --inputs "
                                  "FILE.npz") from None
    spec = sidecar.get("batch") or {}
    default = int(spec.get("opt", spec.get("min", 1))) if spec.get("dynamic") else int(spec.get("min", 1))
    if batch is not None and not spec.get("dynamic") and batch != default:
        raise DebugPrecisionError(f"--batch {batch}: {model_path} has a fixed batch of {default}")
    if batch is not None and spec.get("dynamic") and not int(spec["min"]) <= batch <= int(spec["max"]):
        raise DebugPrecisionError(f"--batch {batch}: {model_path} takes batches {spec['min']}..{spec['max']}")
    if batch is not None and batch < 1:
        raise DebugPrecisionError(f"--batch must be >= 1, got {batch}")
    feeds = sample_inputs(cfg, batch or default)
    missing = set(network_inputs(model)) - set(feeds)
    if missing:
        raise DebugPrecisionError(f"{model_path} has inputs {sorted(missing)} that the sample inputs of config "
                                  f"{cfg.name!r} do not provide; give --inputs FILE.npz")
    return {name: feeds[name] for name in network_inputs(model)}


def npz_feeds(path: Path, model: onnx.ModelProto, model_path: Path) -> dict[str, np.ndarray]:
    """Inputs from a .npz with one array per graph input (names, ranks and fixed dims checked)."""
    if not path.is_file():
        raise DebugPrecisionError(f"--inputs {path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DebugPrecisionError(f"--inputs {path}: not a readable .npz ({exc})") from None
    expected = network_inputs(model)
    if set(arrays) != set(expected):
        raise DebugPrecisionError(f"--inputs {path}: arrays {sorted(arrays)}, but {model_path} takes "
                                  f"{sorted(expected)}")
    for name, info in expected.items():
        dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        array = arrays[name]
        if array.ndim != len(dims) or any(d is not None and d != s for d, s in zip(dims, array.shape)):
            raise DebugPrecisionError(f"--inputs {path}: {name!r} has shape {list(array.shape)}, {model_path} "
                                      f"expects {[d if d is not None else '?' for d in dims]}")
        want = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        if (array.dtype.kind == "f") != (want.kind == "f") or (want == np.bool_) != (array.dtype == np.bool_):
            raise DebugPrecisionError(f"--inputs {path}: {name!r} is {array.dtype}, {model_path} expects {want}")
    return arrays


def engine_runner(engine: Path, plugin_library: str | None):
    """Polygraphy's TrtRunner for a built engine, our plugin library loaded first (TensorRT needed);
    ``plugin_library``: --plugins (a build folder or a library in it), default as for every engine."""
    from engines.plugin_library import check_plugin_library, engine_plugin_library
    from engines.tensorrt_import import import_tensorrt

    if not engine.is_file():  # before the TensorRT hint
        raise DebugPrecisionError(f"--engine {engine}: file not found")
    trt = import_tensorrt()
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    try:
        engine_sidecar = read_sidecar(engine)
    except FileNotFoundError:
        engine_sidecar = {}  # then --plugins / $INSTANCEVG_PLUGINS / build/plugins
    plugin_library = engine_plugin_library(engine_sidecar, plugin_library)
    check_plugin_library(plugin_library, trt.__version__)
    if trt.get_plugin_registry().load_library(str(plugin_library)) is None:
        raise DebugPrecisionError(f"TensorRT could not load the plugin library {plugin_library}")
    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine))), name=f"B: {engine.name}")


# -- matching tensors across the two graphs ---------------------------------------------------------------

FLOAT_ELEM_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
                    onnx.TensorProto.DOUBLE}


def _kind(elem_type: int) -> str:
    """float / int / bool: what a tensor holds, whatever its precision."""
    if elem_type in FLOAT_ELEM_TYPES:
        return "float"
    return "bool" if elem_type == onnx.TensorProto.BOOL else "int"


def _constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Initializers and Constant node values by value name."""
    constants = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            constants[node.output[0]] = node.attribute[0].t
    return constants


def _same_constant(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal up to the rounding of an FP16 graph (whose constants may also be computed in FP16)."""
    if x.shape != y.shape or (x.dtype.kind == "f") != (y.dtype.kind == "f"):
        return False
    if x.dtype.kind != "f":
        return bool(np.array_equal(x, y))
    with np.errstate(over="ignore"):  # float32 extremes (mask fill values) saturate to FP16's inf
        x, y = x.astype(np.float16).astype(np.float64), y.astype(np.float16).astype(np.float64)
    finite = np.isfinite(x)
    if not np.array_equal(finite, np.isfinite(y)) or not np.array_equal(x[~finite], y[~finite], equal_nan=True):
        return False
    scale = float(np.abs(x[finite]).max(initial=0.0))
    return bool(np.allclose(x[finite], y[finite], rtol=1e-2, atol=1e-3 * max(1.0, scale)))


def constant_ids(model_a: onnx.ModelProto, model_b: onnx.ModelProto) -> tuple[dict[str, str], dict[str, str]]:
    """An identity for every constant of A and of B such that corresponding constants share it: a digest
    of the values rounded to FP16 (names are no guide: exporter-numbered constants such as val_12 shift
    when the FP16 graph adds nodes, and the exporter merges constants of equal value, e.g. zero biases,
    differently in the two graphs), except that a B constant whose namesake in A holds the same values up
    to FP16 rounding (a bias folded in FP16) takes A's identity."""
    import hashlib

    ca, cb = _constants(model_a), _constants(model_b)
    arrays_a = {k: onnx.numpy_helper.to_array(v) for k, v in ca.items()}
    arrays_b = {k: onnx.numpy_helper.to_array(v) for k, v in cb.items()}

    def identity(array: np.ndarray) -> str:
        with np.errstate(over="ignore"):
            values = np.ascontiguousarray(array.astype(np.float16 if array.dtype.kind == "f" else np.int64))
        return f"{array.dtype.kind == 'f'}:{array.shape}:{hashlib.sha1(values.tobytes()).hexdigest()}"

    ids_a = {k: identity(v) for k, v in arrays_a.items()}
    ids_b = {k: (ids_a[k] if k in arrays_a and _same_constant(arrays_a[k], v) else identity(v))
             for k, v in arrays_b.items()}
    return ids_a, ids_b


def _attribute_signature(attr: onnx.AttributeProto):
    if attr.name in ("to", "dtype", "output_dtype", "stash_type") and attr.type == onnx.AttributeProto.INT:
        return _kind(attr.i)  # precision is what the two graphs may differ in
    if attr.type == onnx.AttributeProto.TENSOR:
        array = onnx.numpy_helper.to_array(attr.t)
        return (_kind(attr.t.data_type), array.shape, array.astype(np.float16 if array.dtype.kind == "f"
                                                                   else np.int64).tobytes())
    if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return attr.name
    return repr(onnx.helper.get_attribute_value(attr))


def tensor_signatures(model: onnx.ModelProto, ids: dict[str, str] | None = None) -> dict[str, str]:
    """A digest per value that identifies what it computes up to precision: the op, its attributes
    (precision-free) and the digests of its inputs, down to graph inputs (by name) and constants (by ``ids``
    from :func:`constant_ids`, default their names). A Cast between float types is transparent, so the FP16 graph's
    extra Casts, and the renumbering of names they cause, do not break the correspondence."""
    import hashlib

    ids = ids or {}
    digest = {name: f"input:{name}" for name in network_inputs(model)}
    for name in _constants(model):
        digest[name] = f"constant:{ids.get(name, name)}"
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        cast_to = next((a.i for a in node.attribute if a.name == "to"), None)
        if (node.op_type == "Cast" and node.domain in ("", "ai.onnx") and cast_to in FLOAT_ELEM_TYPES
                and types.get(node.input[0]) in FLOAT_ELEM_TYPES and node.input[0] in digest):
            digest[node.output[0]] = digest[node.input[0]]
            continue
        key = repr((node.domain, node.op_type, [digest.get(i, f"missing:{i}") for i in node.input],
                    sorted((a.name, _attribute_signature(a)) for a in node.attribute)))
        base = hashlib.sha1(key.encode()).hexdigest()
        for index, out in enumerate(node.output):
            if out:
                digest[out] = f"{base}:{index}"
    return digest


def match_tensors(model_a: onnx.ModelProto, model_b: onnx.ModelProto) -> dict[str, str]:
    """A's node outputs -> B's tensor computing the same thing (same signature; the same name when
    several B tensors qualify, else the first in B's order). Both models with their types inferred
    (:func:`mark_all_outputs` does it): float Casts are recognised by their input's type."""
    ids_a, ids_b = constant_ids(model_a, model_b)
    sig_a, sig_b = tensor_signatures(model_a, ids_a), tensor_signatures(model_b, ids_b)
    by_signature: dict[str, list[str]] = {}
    for node in model_b.graph.node:
        for out in node.output:
            if out and node.op_type != "Constant":
                by_signature.setdefault(sig_b[out], []).append(out)
    matches = {}
    for node in model_a.graph.node:
        if node.op_type == "Constant":
            continue
        for out in node.output:
            candidates = by_signature.get(sig_a.get(out), []) if out else []
            if candidates:
                matches[out] = out if out in candidates else candidates[0]
    return matches


# -- comparing ----------------------------------------------------------------------------------------------

@dataclass
class TensorStats:
    """One tensor of A against its namesake in B. ``max_rel`` = max_abs / max |A| (finite elements)."""

    name: str
    shape: list
    dtype_a: str
    dtype_b: str
    max_abs: float
    mean_abs: float
    max_rel: float
    max_abs_a: float
    max_abs_b: float
    nan_a: int
    nan_b: int
    inf_a: int
    inf_b: int
    nonfinite_mismatch: int
    limit: float
    passed: bool
    note: str = ""
    name_b: str | None = None  # B's name where it differs (renumbered by the FP16 graph's extra Casts)


def compare_tensor(name: str, a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> TensorStats:
    """Statistics and verdict for one tensor (see the module docstring for the criterion)."""
    a, b = np.asarray(a), np.asarray(b)
    base = dict(name=name, shape=list(a.shape), dtype_a=a.dtype.name, dtype_b=b.dtype.name)
    if a.shape != b.shape:
        return TensorStats(**base, max_abs=float("inf"), mean_abs=float("inf"), max_rel=float("inf"),
                           max_abs_a=0.0, max_abs_b=0.0, nan_a=0, nan_b=0, inf_a=0, inf_b=0, nonfinite_mismatch=0,
                           limit=0.0, passed=False, note=f"shape {list(a.shape)} vs {list(b.shape)}")
    floating = a.dtype.kind == "f" or b.dtype.kind == "f"
    x, y = a.astype(np.float64), b.astype(np.float64)
    fx, fy = np.isfinite(x), np.isfinite(y)
    both = fx & fy
    # NaN/inf must sit at the same places with the same value (the -inf of attention masks agree)
    mismatch = int(np.count_nonzero((fx != fy) | (~fx & ~fy & ~((x == y) | (np.isnan(x) & np.isnan(y))))))
    diff = np.abs(x[both] - y[both])
    max_abs = float(diff.max()) if diff.size else 0.0
    scale_a = float(np.abs(x[fx]).max()) if fx.any() else 0.0
    scale_b = float(np.abs(y[fy]).max()) if fy.any() else 0.0
    limit = atol + rtol * scale_a if floating else 0.0
    passed = max_abs <= limit and mismatch == 0
    note = ""
    overflow = int(np.count_nonzero(fx & np.isinf(y)))
    if overflow:
        note = (f"B has inf at {overflow} elements finite in A (|A| up to {scale_a:.4g}"
                + (f" > {FP16_MAX:.0f}, FP16's largest value)" if scale_a > FP16_MAX else ")"))
    elif np.count_nonzero(fx & np.isnan(y)):
        note = f"B has NaN at {int(np.count_nonzero(fx & np.isnan(y)))} elements finite in A"
    return TensorStats(**base, max_abs=max_abs if mismatch == 0 else float("inf"),
                       mean_abs=float(diff.mean()) if diff.size else 0.0,
                       max_rel=(max_abs / scale_a if scale_a > 0 else (0.0 if max_abs == 0 else float("inf")))
                       if mismatch == 0 else float("inf"),
                       max_abs_a=scale_a, max_abs_b=scale_b, nan_a=int(np.isnan(x).sum()),
                       nan_b=int(np.isnan(y).sum()), inf_a=int(np.isinf(x).sum()), inf_b=int(np.isinf(y).sum()),
                       nonfinite_mismatch=mismatch, limit=limit, passed=bool(passed), note=note)


class RangeCompare:
    """A Polygraphy compare function: (IterationResult A, IterationResult B) -> OrderedDict[A's name,
    passed] over the matched tensors (``matches``: A name -> B name; None: equal names); keeps the
    statistics in ``stats``."""

    def __init__(self, atol: float, rtol: float, matches: dict[str, str] | None = None):
        self.atol, self.rtol, self.matches = atol, rtol, matches
        self.stats: dict[str, TensorStats] = {}

    def __call__(self, iter_a, iter_b) -> OrderedDict:
        verdicts = OrderedDict()
        pairs = self.matches if self.matches is not None else {n: n for n in iter_a.keys()}
        for name_a, name_b in pairs.items():
            if name_a in iter_a.keys() and name_b in iter_b.keys():
                stats = compare_tensor(name_a, iter_a[name_a], iter_b[name_b], self.atol, self.rtol)
                if name_b != name_a:
                    stats.name_b = name_b
                self.stats[name_a] = stats
                verdicts[name_a] = stats.passed
        return verdicts


@dataclass
class Offender:
    """A node of A with at least one output beyond tolerance."""

    node: str
    op_type: str
    index: int  # position in A's topological order
    origin: bool  # every compared input of the node agreed: the error starts here
    outputs: list[TensorStats]


def find_offenders(model: onnx.ModelProto, stats: dict[str, TensorStats]) -> list[Offender]:
    """The nodes of A (topological order, as ONNX requires) whose compared outputs disagree."""
    offenders = []
    for index, node in enumerate(model.graph.node):
        bad = [stats[o] for o in node.output if o in stats and not stats[o].passed]
        if bad:
            origin = all(stats[i].passed for i in node.input if i in stats)
            offenders.append(Offender(node.name, node.op_type, index, origin, bad))
    return offenders


@dataclass
class PrecisionReport:
    a: str
    b: str
    inputs: str
    atol: float
    rtol: float
    compared: int
    only_in_a: int
    only_in_b: int
    tensors: list[TensorStats]
    offenders: list[Offender]
    graph_outputs: list[str]

    @property
    def passed(self) -> bool:
        return not self.offenders

    @property
    def renamed(self) -> int:
        return sum(t.name_b is not None for t in self.tensors)

    def lines(self, first: int = 5) -> list[str]:
        head = [f"A {self.a}", f"B {self.b}",
                f"inputs: {self.inputs}; tolerance: max|A-B| <= {self.atol:g} + {self.rtol:g} * max|A| per tensor",
                f"compared {self.compared} tensors ({self.renamed} under another name in B); {self.only_in_a} only in "
                f"A, {self.only_in_b} only in B"]
        if self.compared == 0:
            return head + ["no tensor name is common to both: are they graphs of the same model?"]
        if not self.offenders:
            worst = max(self.tensors, key=lambda t: t.max_rel)
            return head + [f"all within tolerance; largest relative error {worst.max_rel:.3e} at {worst.name!r}"]
        origins = sum(o.origin for o in self.offenders)
        lines = head + [f"{len(self.offenders)} nodes over tolerance, {origins} where the error starts "
                        f"(* = its inputs agree); the first {min(first, len(self.offenders))} in topological order:"]
        for o in self.offenders[:first]:
            for t in o.outputs:
                lines.append(f"{'*' if o.origin else ' '} #{o.index} {o.node} ({o.op_type}) -> {t.name} "
                             f"{t.shape}: max abs {t.max_abs:.3e}, rel {t.max_rel:.3e} (limit {t.limit:.3e}), "
                             f"max|A| {t.max_abs_a:.4g}, max|B| {t.max_abs_b:.4g}, NaN {t.nan_a}/{t.nan_b}, "
                             f"inf {t.inf_a}/{t.inf_b}" + (f"; {t.note}" if t.note else ""))
        bad_outputs = [t.name for t in self.tensors if t.name in self.graph_outputs and not t.passed]
        lines.append(f"graph outputs over tolerance: {', '.join(bad_outputs) or 'none'}")
        return lines

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "inputs": self.inputs, "tolerance": {"atol": self.atol, "rtol": self.rtol,
                "criterion": "max|A-B| <= atol + rtol * max|A| over elements finite in both; NaN/inf at the "
                             "same places; integer tensors equal"},
                "passed": self.passed, "compared": self.compared, "only_in_a": self.only_in_a,
                "only_in_b": self.only_in_b,
                "offenders": [{"node": o.node, "op_type": o.op_type, "index": o.index, "origin": o.origin,
                               "outputs": [t.name for t in o.outputs]} for o in self.offenders],
                "tensors": [_finite_json(asdict(t)) for t in self.tensors]}


def _finite_json(record: dict) -> dict:
    """JSON has no inf/NaN: such statistics are written as the strings "inf", "-inf", "nan"."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def _load_graph(path: Path, what: str) -> onnx.ModelProto:
    if not path.is_file():
        raise DebugPrecisionError(f"{what} {path}: file not found")
    try:
        return onnx.load(os.fspath(path))
    except Exception as exc:  # protobuf decode errors: not an ONNX file
        raise DebugPrecisionError(f"{what} {path}: not an ONNX model ({exc})") from None


def debug_precision(a: str | os.PathLike, b: str | os.PathLike | None = None, engine: str | os.PathLike | None = None,
                    plugins: str | None = None, inputs: str = "sample", batch: int | None = None,
                    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> PrecisionReport:
    """Run A and B (or the engine) on the same inputs with every tensor marked, compare by name; the
    Python API of ``instancevg-debug-precision``."""
    from polygraphy.backend.onnxrt import OnnxrtRunner
    from polygraphy.comparator import Comparator
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    if (b is None) == (engine is None):
        raise DebugPrecisionError("give either a second graph B or --engine, not both or neither")
    if atol < 0 or rtol < 0:
        raise DebugPrecisionError(f"--atol and --rtol must be >= 0, got {atol}, {rtol}")
    a = Path(a)
    model_a = _load_graph(a, "graph A")
    feeds = (sample_feeds(a, model_a, batch) if inputs == "sample" else npz_feeds(Path(inputs), model_a, a))
    described = (f"sample inputs ({', '.join(f'{k} {list(v.shape)}' for k, v in feeds.items())})"
                 if inputs == "sample" else f"{inputs}")
    marked_a = mark_all_outputs(model_a)
    runner_a = OnnxrtRunner(lambda: make_session(marked_a), name=f"A: {a.name}")
    if engine is not None:  # an engine exposes the tensors it was built to output, under their ONNX names
        runner_b, label_b, names_b, matches = engine_runner(Path(engine), plugins), str(engine), None, None
    else:
        b = Path(b)
        model_b = _load_graph(b, "graph B")
        marked_b = mark_all_outputs(model_b)
        runner_b, label_b = OnnxrtRunner(lambda: make_session(marked_b), name=f"B: {b.name}"), str(b)
        names_b = {o.name for o in marked_b.graph.output}
        matches = match_tensors(marked_a, marked_b)
    compare = RangeCompare(atol, rtol, matches)
    try:
        # Polygraphy's own per-output statistics meet the -inf of attention masks: keep numpy quiet about it
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            results = Comparator.run([runner_a, runner_b], data_loader=[feeds])
            Comparator.compare_accuracy(results, compare_func=compare)
    except PolygraphyException as exc:
        raise DebugPrecisionError(f"running the graphs failed: {exc}") from None
    if names_b is None:
        names_b = set(results[1][1][0].keys())
    order = [o.name for o in marked_a.graph.output]
    tensors = [compare.stats[n] for n in order if n in compare.stats]
    used_b = {t.name_b or t.name for t in tensors}
    return PrecisionReport(str(a), label_b, described, atol, rtol, len(tensors), len(order) - len(tensors),
                           len(names_b - used_b), tensors, find_offenders(model_a, compare.stats),
                           [o.name for o in model_a.graph.output])


# -- CLI ------------------------------------------------------------------------------------------------------

DESCRIPTION = """Where do two graphs of the same model start to disagree? FP32 vs FP16 export, portable vs
tensorrt target, or an ONNX graph vs a TensorRT engine.

    instancevg-debug-precision model.onnx model_fp16.onnx -o report.json
    instancevg-debug-precision model.onnx --engine model_fp16.engine --plugins libinstancevg_plugins.so

Both sides run on the same inputs with every intermediate tensor marked as an output (Polygraphy: ONNX
Runtime runner, TensorRT runner for --engine, Comparator). Tensors are matched by what they compute (the
FP16 graph's extra Casts are transparent). A tensor agrees when max|A-B| <= atol + rtol * max|A| and its
NaN/inf sit where A's do. The report walks A in topological order and prints the first nodes over
tolerance, '*' marking those whose inputs agree (the error starts there), with per-tensor statistics.
Exit status: 0 all tensors agree, 1 some differ, 2 bad input.
"""


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-debug-precision", DESCRIPTION)
    p.add_argument("a", help="graph A, the reference side (e.g. the FP32 export)")
    p.add_argument("b", nargs="?", help="graph B (e.g. the FP16 export of the same model); or use --engine")
    p.add_argument("--engine", help="a TensorRT engine as side B (needs TensorRT and the plugin library)")
    p.add_argument("--inputs", default="sample",
                   help="'sample': deterministic sample inputs for the config in A's sidecar (default); or a "
                        ".npz with one array per graph input")
    p.add_argument("--batch", type=int, help="with --inputs sample: batch size (default: the sidecar's)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="absolute tolerance (default: %(default)g)")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help="tolerance relative to each tensor's largest |A| (default: %(default)g)")
    p.add_argument("--first", type=int, default=5, help="how many offending nodes to print (default: %(default)s)")
    add_output_argument(p, "JSON report of every compared tensor")
    add_plugins_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_writable(args.output, "-o")
    apply_plugins(args)
    report = debug_precision(args.a, args.b, args.engine, args.plugins, args.inputs, args.batch, args.atol, args.rtol)
    print("\n".join(report.lines(args.first)))
    if args.output:
        from instancevg.io import write_json_atomic

        write_json_atomic(args.output, report.as_dict())
        print(f"wrote {args.output}")
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-debug-precision", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
