"""instancevg-demo: the whole chain on the embedded default, on a CPU, with nothing downloaded.

bundled tiny model -> ONNX exports (tensorrt and portable targets, FP32 and FP16, each verified) ->
ONNX Runtime evaluation of all four graphs on synthetic data of every benchmark format (the tensorrt-target
graphs with the plugins' own kernels as custom operators: the exact graph TensorRT receives) -> parity
report against PyTorch (and the tensorrt backend too where TensorRT, a GPU and the plugin library exist).
The plugins' host kernels are built with CMake into OUTPUT/build/plugins when none are found
(--plugins / $INSTANCEVG_PLUGINS, else build/plugins).

    instancevg-demo -o demo/

writes demo/data (the synthetic datasets), demo/models (graphs + sidecars), demo/build (the host kernels,
when built here) and the parity report
demo/parity.{json,md,html} (verdict, one summary row per candidate and split, details, what was not run
and why); it prints the verdict, one line per candidate and the report paths. The exit status is 1 when a
parity tolerance is exceeded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engines.tensorrt_import import tensorrt_unavailable
from instancevg import bundled
from instancevg.cli.arguments import (add_output_argument, add_plugins_argument, add_progress_argument, apply_plugins,
                                     check_writable, make_parser, run_command)
from instancevg.data.datasets import available_benchmarks, get_benchmark, open_dataset
from instancevg.data.synthetic import generate
from instancevg.ops import kernels
from instancevg.ops.kernels import KernelLibraryError
from instancevg.plugin_paths import plugin_library as plugin_library_path

from .parity import compare_split
from .parity_report import NotRun, ParityReport

def run_demo(output: str | Path, num_images: int = 32, seed: int = 0, batch_size: int = 4,
             max_samples: int | None = None, progress: bool = True) -> ParityReport:
    """The whole chain (see the module docstring); returns the parity report it wrote."""
    from export.exporter import export_onnx
    from export.options import ExportOptions

    from .backends.onnxruntime import OnnxRuntimeBackend
    from .backends.pytorch import PyTorchBackend

    output = Path(output)
    plugin_library = plugin_library_path()  # before a host build below points the search at that build
    checkpoint = bundled.default_checkpoint("tiny")
    random_weights = checkpoint is None
    print(f"[1/4] synthetic data -> {output / 'data'}", flush=True)
    generate(str(output / "data"), num_images=num_images, seed=seed)
    try:
        print(f"      plugin kernels (host build): {kernels.ensure_host_library(output / 'build' / 'plugins')}",
              flush=True)
    except KernelLibraryError as exc:  # the tensorrt-target graphs are then listed as not run, with this reason
        print(f"      plugin kernels unavailable: {str(exc).splitlines()[0]}", flush=True)
    print("[2/4] exporting the bundled tiny model" + (" (no bundled checkpoint: random weights)" if random_weights
                                                      else f" ({checkpoint.name})"), flush=True)
    graphs = {}
    for target in ("tensorrt", "portable"):
        for fp16 in (False, True):
            name = f"tiny_{target}_{'fp16' if fp16 else 'fp32'}"
            graphs[name] = output / "models" / f"{name}.onnx"
            export_onnx(graphs[name], "tiny", ExportOptions(target=target, fp16=fp16), checkpoint=checkpoint,
                        random_weights=random_weights, log=None)
            print(f"      {graphs[name]} (verified)", flush=True)
    reference = PyTorchBackend.from_files("tiny", checkpoint, None, "cpu", random_weights)
    candidates, not_run = {}, []
    for target in ("portable", "tensorrt"):
        for p in ("fp32", "fp16"):
            label = f"onnxruntime {'tensorrt-target' if target == 'tensorrt' else target} {p}"
            try:
                candidates[label] = OnnxRuntimeBackend(graphs[f"tiny_{target}_{p}"])
            except RuntimeError as exc:  # the plugin kernels could not be built or loaded here
                not_run.append(NotRun(label, str(exc)))
    skipped = tensorrt_unavailable(plugin_library)
    not_run += [] if skipped is None else [NotRun(f"tensorrt {p}", skipped) for p in ("fp32", "fp16")]
    if skipped is None:
        from engines.build import build_engine

        from .backends.tensorrt import TensorRTBackend

        for p in ("fp32", "fp16"):
            engine = output / "models" / f"tiny_tensorrt_{p}.engine"
            build_engine(graphs[f"tiny_tensorrt_{p}"], engine, plugin_library)
            candidates[f"tensorrt {p}"] = TensorRTBackend(engine, plugins=str(plugin_library))
    print("[3/4] evaluating " + ", ".join(candidates) + " against pytorch"
          + (f" (not run: {', '.join(n.label for n in not_run)})" if not_run else ""), flush=True)
    found = available_benchmarks(str(output / "data"))
    sections = {}
    for label, candidate in candidates.items():
        results = sections.setdefault(label, [])
        for name in found:
            benchmark = get_benchmark(name)
            for split in benchmark.splits:
                dataset = open_dataset(name, split, str(output / "data"))
                results.append(compare_split(candidate, reference, dataset, benchmark.metrics, None, batch_size,
                                             0, progress, max_samples))
    print("[4/4] parity report", flush=True)
    report = ParityReport(sections, not_run, title="instancevg-demo: backend parity on synthetic data",
                          suite="paper", data_root=str(output / "data"), config="tiny",
                          checkpoint=str(checkpoint) if checkpoint else None, random_weights=random_weights,
                          graphs={k: str(v) for k, v in graphs.items()})
    paths = report.write(output / "parity.json")
    print(report.console())
    print("reports: " + ", ".join(map(str, paths)))
    return report


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-demo", __doc__)
    add_output_argument(p, "output folder", default="instancevg-demo")
    p.add_argument("--num-images", type=int, default=32, help="synthetic images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="samples per batch (default: %(default)s)")
    p.add_argument("--max-samples", type=int, help="evaluate only the first N samples of each split")
    add_plugins_argument(p)
    add_progress_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    check_writable(args.output, "-o", "folder")
    apply_plugins(args)
    report = run_demo(args.output, args.num_images, args.seed, args.batch_size, args.max_samples,
                      not args.no_progress)
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-demo", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
