"""The command-line vocabulary shared by every instancevg command, like Polygraphy's argument groups: each
option is defined once here, with one name, default and help, and a command adds the groups it takes. Also
the one way every command reports expected failures (one line on stderr, exit status 2, no traceback) and
interruptions (Ctrl-C, SIGTERM: one line, exit status 130 / 143, temporary files removed by the writers'
own cleanup), and the output checks made before any work starts.

Imports nothing heavy (argparse, the config presets, the plugin paths): every stage's CLI uses it, the
engines stage included.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from ..config import PRESETS
from ..plugin_paths import PLUGINS_ENV, use_plugins

OP_IMPLEMENTATIONS = ("reference", "plugin")
PRECISIONS = ("fp32", "fp16")
DATA_FORMATS = ("auto", "unified", "original")


class CommandError(Exception):
    """An expected failure a command reports as one line (exit status 2)."""


class Interrupted(BaseException):
    """SIGTERM, raised where the program stands so that ``finally`` blocks (temporary files) run."""


# --------------------------------------------------------------------------------------------- groups
def add_model_arguments(parser: argparse.ArgumentParser, checkpoint: bool = True, random_weights: bool = True
                        ) -> argparse._ArgumentGroup:
    """--config, --checkpoint, --tokenizer, --random-weights, --trust-checkpoint."""
    group = parser.add_argument_group("model")
    group.add_argument("--config", choices=sorted(PRESETS),
                       help="model preset (default: the exported graph's config where one is given, else tiny)")
    if checkpoint:
        group.add_argument("--checkpoint",
                           help="InstanceVG checkpoint (.pth, official format, module. prefix or not) (default: the "
                                "checkpoint bundled for the config, tiny; other configs need one or "
                                "--random-weights)")
    group.add_argument("--tokenizer",
                       help="SentencePiece model the checkpoint was trained with, BEiT-3's beit3.spm (default: the "
                            "one bundled for tiny)")
    if random_weights:
        group.add_argument("--random-weights", action="store_true",
                           help="no checkpoint: seeded random weights (smoke tests and benchmarks only)")
    group.add_argument("--trust-checkpoint", action="store_true",
                       help="load checkpoints that safe loading refuses by unpickling them fully: this runs code "
                            "from the file, so use only files you trust")
    return group


def add_runtime_arguments(parser: argparse.ArgumentParser, cuda_graph: bool = False, ops: bool = True
                          ) -> argparse._ArgumentGroup:
    """How the PyTorch model runs: --device, --ops, --precision, --tf32 (and --cuda-graph)."""
    group = parser.add_argument_group("PyTorch runtime")
    group.add_argument("--device", default="cpu",
                       help="cpu, cuda or cuda:N; under torchrun each process uses the GPU of its LOCAL_RANK "
                            "(default: cpu)")
    if ops:
        group.add_argument("--ops", choices=OP_IMPLEMENTATIONS, default="reference",
                           help="implementation of the custom ops MSDeformAttn and PointSelect: reference (PyTorch) "
                                "or plugin (the TensorRT plugins' own kernels: host build on the CPU, CUDA build on a "
                                "GPU; built from plugins/ with CMake, found through --plugins) (default: reference)")
        group.add_argument("--precision", choices=PRECISIONS, default="fp32",
                           help="fp32, or fp16 with the FP16 export's float32 islands (default: fp32)")
        group.add_argument("--tf32", action="store_true",
                           help="allow TF32 matrix products and convolutions on CUDA (default: full float32)")
    if cuda_graph:
        group.add_argument("--cuda-graph", action="store_true",
                           help="replay the PyTorch model (and TensorRT engines) from CUDA graphs (CUDA only)")
    return group


def add_plugins_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--plugins: the one place every command finds the libraries built from plugins/."""
    parser.add_argument("--plugins", metavar="PATH",
                        help=f"the plugins/ build folder, or a library in it (default: ${PLUGINS_ENV}, else "
                             "build/plugins): the kernels of --ops plugin and of tensorrt-target graphs in ONNX "
                             "Runtime, libinstancevg_plugins.so for TensorRT (an engine's sidecar records the one it "
                             "was built with)")


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> argparse._ArgumentGroup:
    """--data-root, --format."""
    group = parser.add_argument_group("data")
    group.add_argument("--data-root", required=required,
                       help="folder holding the datasets, in the official unified JSONs or the original releases")
    group.add_argument("--format", choices=DATA_FORMATS, default="auto",
                       help="input format of --data-root (default: auto, whichever is found)")
    return group


def add_output_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str,
                        required: bool = False, default: str | None = None) -> None:
    """-o/--output, the output of a command (``what`` says what is written there)."""
    suffix = f" (default: {default})" if default else ""
    parser.add_argument("-o", "--output", required=required, default=default,
                        help=f"{what}; written atomically, checked writable before any work starts{suffix}")


def add_progress_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


# --------------------------------------------------------------------------------------------- after parsing
def runtime_options(args: argparse.Namespace) -> dict:
    """The keyword options of ``PyTorchBackend`` chosen by :func:`add_runtime_arguments`."""
    return {"ops": getattr(args, "ops", "reference"), "precision": getattr(args, "precision", "fp32"),
            "tf32": getattr(args, "tf32", False), "cuda_graph": getattr(args, "cuda_graph", False)}


def apply_plugins(args: argparse.Namespace) -> None:
    """Point the plugin search (the kernel loader, TensorRT library lookups) at --plugins when given."""
    plugins = getattr(args, "plugins", None)
    if plugins:
        if not Path(plugins).exists():
            raise CommandError(f"--plugins {plugins}: no such file or folder (the plugins/ build folder, or a library "
                               "in it)")
        use_plugins(plugins)


def check_writable(path: str | os.PathLike, option: str, kind: str = "file") -> Path:
    """Fail before any work when ``path`` cannot be written: ``kind`` "file" (a file, its folder created if
    missing), "folder" (created if missing) or "prefix" (files named PREFIX.ext). Returns the path."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise CommandError(f"{option} {path}: is a folder; give a file name")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path}: exists and is not a folder")
    folder = path if kind == "folder" else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot write in {folder}: {exc.strerror or exc}") from None
    return path


# --------------------------------------------------------------------------------------------- running
EXPECTED_ERRORS = (CommandError, ValueError, FileNotFoundError, OSError, RuntimeError, KeyError)


def run_command(prog: str, main: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                expected: Sequence[type[BaseException]] = ()) -> int:
    """``main(args)`` with the shared reporting: its return value (None = 0) as the exit status; expected
    failures (EXPECTED_ERRORS and ``expected``) as ``prog: error: message`` and status 2 (with
    $INSTANCEVG_TRACEBACK set: the traceback); Ctrl-C and
    SIGTERM as ``prog: interrupted`` and status 130 / 143. Temporary files are removed by the writers' own
    ``finally`` blocks, which run on both interruptions."""
    previous = signal.getsignal(signal.SIGTERM)

    def terminate(signum, frame):
        raise Interrupted()

    try:
        signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        return int(main(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C); nothing half-written was left behind", file=sys.stderr)
        return 130
    except Interrupted:
        print(f"{prog}: terminated (SIGTERM); nothing half-written was left behind", file=sys.stderr)
        return 143
    except (*EXPECTED_ERRORS, *expected) as exc:
        if os.environ.get("INSTANCEVG_TRACEBACK"):  # developers: the whole story
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
