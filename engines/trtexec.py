"""``trtexec`` command lines equivalent to ``instancevg-build-engine`` (TensorRT 10 and 11).

TensorRT 10 needs ``--stronglyTyped`` so that the graph's FP16/FP32 types are obeyed; TensorRT 11 is
always strongly typed and has no precision flags at all (the flag is a deprecated no-op there). Our
plugins load either through ``--dynamicPlugins`` (the library's ``getCreators``/``setLoggerFinder``) or
``--staticPlugins``. The build makes two files from the same objects (plugins/README.md):
``libinstancevg_plugins.so`` exports only ``getCreators``/``setLoggerFinder`` (dynamic loading;
TensorRT's ``loadLibrary`` fails for creators that are already registered), and
``libinstancevg_plugins_static.so`` registers its creators when loaded (static loading).
INT8 graphs (explicit quantization: QuantizeLinear/DequantizeLinear nodes, ``instancevg-export --int8``)
take the same lines: strongly typed builds get INT8 from the Q/DQ nodes (``--int8`` is a weak-typing flag
TensorRT 10 refuses with ``--stronglyTyped`` and TensorRT 11 removed).
"""
from __future__ import annotations

import shlex
from typing import Sequence

Shape = Sequence[int]


def static_library(dynamic_library: str) -> str:
    """The self-registering sibling of a dynamic plugin library: lib<name>.so -> lib<name>_static.so."""
    stem, dot, ext = dynamic_library.rpartition(".so")
    return f"{stem}_static.so{ext}" if dot else dynamic_library + "_static"


def shape_arg(inputs: Sequence[tuple[str, Shape]], batch: int) -> str:
    """'image:2x3x320x320,text_ids:2x50,...' with the batch dimension set."""
    return ",".join(f"{name}:" + "x".join(str(batch) if i == 0 else str(d) for i, d in enumerate(shape))
                    for name, shape in inputs)


def trtexec_command(onnx: str, engine: str, plugin_library: str, tensorrt_major: int,
                    inputs: Sequence[tuple[str, Shape]], batch: tuple[int, int, int] | None = None,
                    workspace_mib: int | None = None, timing_cache: str | None = None,
                    static_plugins: bool = False) -> list[str]:
    """argv of the trtexec build. ``plugin_library``: the dynamic library (its static sibling is used with
    ``static_plugins``); ``inputs``: (name, shape) with the batch first; ``batch``: (min, opt, max) for a
    dynamic-batch graph, None for a fixed-shape one."""
    if tensorrt_major not in (10, 11):
        raise ValueError(f"tensorrt_major must be 10 or 11, got {tensorrt_major}")
    argv = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    if tensorrt_major == 10:
        argv.append("--stronglyTyped")
    argv.append(f"--staticPlugins={static_library(plugin_library)}" if static_plugins
                else f"--dynamicPlugins={plugin_library}")
    if batch is not None:
        lo, opt, hi = batch
        argv += [f"--minShapes={shape_arg(inputs, lo)}", f"--optShapes={shape_arg(inputs, opt)}",
                 f"--maxShapes={shape_arg(inputs, hi)}"]
    if workspace_mib:
        argv.append(f"--memPoolSize=workspace:{workspace_mib}M")
    if timing_cache:
        argv.append(f"--timingCacheFile={timing_cache}")
    return argv


def format_command(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
