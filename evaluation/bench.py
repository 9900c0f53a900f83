"""instancevg-bench: latency and throughput of the backends on the same inputs.

    instancevg-bench --backends pytorch,onnxruntime --onnx model.onnx --batch-sizes 1,4 -o bench.json
    instancevg-bench --backends pytorch,onnxruntime --onnx fp32.onnx,fp16.onnx,int8.onnx --batch-sizes 1,4
    instancevg-bench --backends pytorch,tensorrt --engine model.engine --device cuda --checkpoint CKPT ...
    instancevg-bench --backends triton --url grpc://127.0.0.1:8001 --batch-sizes 1,8   # a Triton deployment

Every backend gets the same preprocessed batch (the bundled sample image and expression, repeated), a
warm-up, then timed iterations of backend.forward (host inputs to host outputs, transfers included),
round robin: iteration i times every backend once, so that a load that changes during the run (another
process on the machine) weighs on all backends alike and the ratios stay meaningful. The 1-minute load
average before and after the run is reported with the machine.
Reports median / p90 / p99 latency, throughput, the machine, and the ratio to the PyTorch eager
baseline measured in the same run. Several graphs (--onnx a.onnx,b.onnx) are timed side by side in the
same run, each labelled by its precision (onnxruntime[int8]; the file name when two share one).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from tqdm import tqdm

from instancevg import bundled
from instancevg.cli.arguments import (CommandError, add_model_arguments, add_output_argument, add_plugins_argument,
                                     add_progress_argument, add_runtime_arguments, apply_plugins, check_writable,
                                     make_parser, run_command)
from instancevg.data.tokenizer import Tokenizer
from instancevg.data.transforms import read_image
from instancevg.inference import prepare_inputs

from .cli import BACKENDS, add_graph_arguments, make_backend, reference_pytorch_settings
from .report import tool_versions, write_report


def sample_inputs(backend, batch: int) -> dict[str, np.ndarray]:
    image_path, expression = bundled.sample()
    tokenizer = Tokenizer(backend.tokenizer_path, backend.config.max_tokens)
    return prepare_inputs([read_image(image_path)] * batch, [expression] * batch, tokenizer,
                          backend.config.image_size)


def time_backends(backends: dict, inputs: dict, warmup: int, iters: int, progress: bool = True) -> dict:
    """{name: latency statistics} of ``backends`` ({name: backend}) on ``inputs`` ({name: batch}), timed
    round robin (see the module docstring)."""
    for _ in range(warmup):
        for name, backend in backends.items():
            backend.forward(inputs[name])
    times: dict[str, list[float]] = {name: [] for name in backends}
    for _ in tqdm(range(iters), desc="timing", unit="round", disable=not progress):
        for name, backend in backends.items():
            t = time.perf_counter()
            backend.forward(inputs[name])
            times[name].append(1000 * (time.perf_counter() - t))
    stats = {}
    for name, values in times.items():
        batch = len(inputs[name]["image"])
        median = statistics.median(values)
        stats[name] = {"batch": batch, "iters": iters, "median_ms": median,
                       "p90_ms": float(np.percentile(values, 90)), "p99_ms": float(np.percentile(values, 99)),
                       "mean_ms": statistics.fmean(values), "throughput_per_s": 1000 * batch / median}
    return stats


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = names[0] if names else None
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        info["int8_isa"] = sorted(f for f in flags if f in ("avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"))
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def benchmark(backends: dict, batch_sizes, warmup: int, iters: int, progress: bool = True) -> list[dict]:
    rows = []
    for batch in batch_sizes:
        if progress:
            print(f"timing {', '.join(backends)} at batch {batch} ...", file=sys.stderr, flush=True)
        inputs = {name: sample_inputs(backend, batch) for name, backend in backends.items()}
        stats = time_backends(backends, inputs, warmup, iters, progress)
        rows += [{"backend": name, **backend.describe(), **stats[name]} for name, backend in backends.items()]
        base = next((r for r in rows if r["backend"] == "pytorch" and r["batch"] == batch), None)
        for r in rows:
            if r["batch"] == batch and base is not None:
                r["speedup_vs_pytorch"] = base["median_ms"] / r["median_ms"]
    return rows


def format_rows(rows: list[dict]) -> str:
    width = max([12] + [len(r["backend"]) for r in rows])
    header = (f"{'backend':<{width}} {'batch':>5} {'median ms':>10} {'p90 ms':>9} {'p99 ms':>9} {'samples/s':>10} "
              f"{'vs pytorch':>10}")
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['speedup_vs_pytorch']:.2f}x" if "speedup_vs_pytorch" in r else "-"
        lines.append(f"{r['backend']:<{width}} {r['batch']:>5} {r['median_ms']:>10.2f} {r['p90_ms']:>9.2f} "
                     f"{r['p99_ms']:>9.2f} {r['throughput_per_s']:>10.1f} {ratio:>10}")
    return "\n".join(lines)


def onnx_backends(args) -> dict:
    """One ONNX Runtime backend per graph of ``--onnx`` (comma-separated), labelled by precision."""
    paths = [p.strip() for p in (args.onnx or "").split(",") if p.strip()]
    if len(paths) <= 1:
        return {"onnxruntime": make_backend("onnxruntime", args, paths[0] if paths else None, None, args.config)}
    graphs = [make_backend("onnxruntime", args, path, None, args.config) for path in paths]
    labels = [g.sidecar.get("precision") or "?" for g in graphs]
    labels = [label if labels.count(label) == 1 else g.onnx_path.stem for label, g in zip(labels, graphs)]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--onnx: several graphs share a name ({', '.join(paths)}); rename them")
    return {f"onnxruntime[{label}]": g for label, g in zip(labels, graphs)}


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-bench", __doc__)
    p.add_argument("--backends", default="pytorch",
                   help=f"comma-separated, from {', '.join(BACKENDS)} (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1", help="comma-separated batch sizes (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: %(default)s)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations (default: %(default)s)")
    add_graph_arguments(p.add_argument_group("exported model"))
    add_model_arguments(p)
    add_runtime_arguments(p, cuda_graph=True)
    add_plugins_argument(p)
    add_output_argument(p, "JSON report")
    add_progress_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise CommandError(f"--backends: unknown {unknown}; expected some of {list(BACKENDS)}")
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        raise CommandError(f"--batch-sizes {args.batch_sizes}: expected comma-separated integers") from None
    if args.iters < 1 or args.warmup < 0 or min(batch_sizes) < 1:
        raise CommandError("--iters and the batch sizes must be >= 1, --warmup >= 0")
    if args.output:
        check_writable(args.output, "-o")
    apply_plugins(args)
    backends = {}
    for name in names:
        if name == "onnxruntime":
            backends.update(onnx_backends(args))
        elif name != "pytorch":
            backends[name] = make_backend(name, args, args.onnx, args.engine, args.config)
    if "pytorch" in names:
        graph = next(iter(backends.values()), None)
        config = args.config or (graph.config.name if graph else None)
        if graph is not None and not args.checkpoint:
            args.random_weights = args.random_weights or reference_pytorch_settings(graph)[1]
        backends = {"pytorch": make_backend("pytorch", args, config=config), **backends}
    before = machine()
    rows = benchmark(backends, batch_sizes, args.warmup, args.iters, progress=not args.no_progress)
    after = machine()
    print(format_rows(rows))
    print(f"machine: {after.get('cpu')}, {after.get('cpu_count')} cores, INT8 instructions "
          f"{', '.join(after.get('int8_isa') or []) or 'none'}; 1-min load average {before.get('load_average_1min')} "
          f"before, {after.get('load_average_1min')} after")
    if args.output:
        write_report(args.output, {"format": "instancevg-bench", "version": 1,
                                   "machine": {**after, "load_average_1min_before": before.get("load_average_1min")},
                                   "tools": tool_versions(), "warmup": args.warmup, "rows": rows})
        print(f"report written to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-bench", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
