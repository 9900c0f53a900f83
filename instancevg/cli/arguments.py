"""The command-line vocabulary shared by every instancevg command, like Polygraphy's argument groups: each
option is defined once here, with one name, default and help, and a command adds the groups it takes. Also
the one way every command reports expected failures (one line on stderr, exit status 2, no traceback) and
interruptions (Ctrl-C, SIGTERM: one line, exit status 130 / 143, temporary files removed by the writers'
own cleanup), and the output checks made before any work starts.

Imports nothing heavy (argparse, the config presets, the plugin paths, the file helpers): every stage's CLI
uses it, the engines stage included.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..config import PRESETS
from ..io import unwritable_reason
from ..plugin_paths import PLUGINS_ENV, TENSORRT_LIBRARY, plugin_library, use_plugins

DEFAULT_CONFIG = "tiny"
OP_IMPLEMENTATIONS = ("reference", "plugin")
PRECISIONS = ("fp32", "fp16")
DATA_FORMATS = ("auto", "unified", "original")
TRACEBACK_ENV = "INSTANCEVG_TRACEBACK"


class CommandError(Exception):
    """An expected failure a command reports as one line (exit status 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised where the program stands so that ``finally`` blocks (temporary files) run;
    a KeyboardInterrupt, which libraries (torch, onnx) let through as they do Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


SIGNALS = {signal.SIGINT: (130, "interrupted (Ctrl-C)"), signal.SIGTERM: (143, "terminated (SIGTERM)")}


# --------------------------------------------------------------------------------------------- groups
def add_model_arguments(parser: argparse.ArgumentParser, checkpoint: bool = True, random_weights: bool = True,
                        tokenizer: bool = True) -> argparse._ArgumentGroup:
    """--config, --checkpoint, --tokenizer, --random-weights, --trust-checkpoint (each flag off where the
    command has no use for it)."""
    group = parser.add_argument_group("model")
    group.add_argument("--config", choices=sorted(PRESETS),
                       help="model preset (default: the config recorded by the exported graph where the command "
                            f"takes one, else {DEFAULT_CONFIG})")
    if checkpoint:
        group.add_argument("--checkpoint", metavar="PTH",
                           help="InstanceVG checkpoint (.pth, official format, with or without the module. prefix) "
                                "(default: the checkpoint bundled for the config; only tiny has one, other configs "
                                "need --checkpoint or --random-weights)")
    if tokenizer:
        add_tokenizer_argument(group)
    if random_weights:
        group.add_argument("--random-weights", action="store_true",
                           help="no checkpoint: seeded random weights (smoke tests and benchmarks only)")
    group.add_argument("--trust-checkpoint", action="store_true",
                       help="load checkpoints that safe loading refuses by unpickling them fully: this runs code "
                            "from the file, so use only files you trust")
    return group


def add_tokenizer_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--tokenizer (part of the model group; alone for commands without a model)."""
    parser.add_argument("--tokenizer", metavar="SPM",
                        help="SentencePiece model the model was trained with, BEiT-3's beit3.spm (default: the one "
                             "bundled for tiny)")


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
                        help="the plugins/ build folder, or a library in it, looked in only there (default: the "
                             f"library an engine's sidecar records where it exists, else ${PLUGINS_ENV}, else "
                             "./build/plugins): "
                             "libinstancevg_plugins.so for TensorRT, libinstancevg_plugins_static.so for Triton, "
                             "the kernels of --ops plugin and of tensorrt-target graphs in ONNX Runtime")


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> argparse._ArgumentGroup:
    """--data-root, --format."""
    group = parser.add_argument_group("data")
    group.add_argument("--data-root", required=required,
                       help="folder holding the datasets, in the official unified JSONs or the original releases")
    group.add_argument("--format", choices=DATA_FORMATS, default="auto",
                       help="input format of --data-root (default: auto, whichever is found)")
    return group


OUTPUT_HELP = "each file written atomically; checked writable before any work starts"


def add_output_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str,
                        required: bool = False, default: str | None = None) -> None:
    """-o/--output, the output of a command (``what`` says what is written there)."""
    suffix = f" (default: {default})" if default else ""
    parser.add_argument("-o", "--output", required=required, default=default,
                        help=f"{what}; {OUTPUT_HELP}{suffix}")


def add_progress_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--no-progress."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of a command: its module docstring as description, shown as written."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


# --------------------------------------------------------------------------------------------- after parsing
def model_config(args: argparse.Namespace, graph_config: str | None = None) -> str:
    """The --config of a command: the one given, else the exported graph's (where there is one), else tiny."""
    return getattr(args, "config", None) or graph_config or DEFAULT_CONFIG


def runtime_options(args: argparse.Namespace) -> dict:
    """The keyword options of ``PyTorchBackend`` chosen by :func:`add_runtime_arguments`."""
    return {"ops": getattr(args, "ops", "reference"), "precision": getattr(args, "precision", "fp32"),
            "tf32": getattr(args, "tf32", False), "cuda_graph": getattr(args, "cuda_graph", False)}


def apply_plugins(args: argparse.Namespace, must_exist: bool = True) -> None:
    """Point the plugin search (the kernel loader, TensorRT library lookups, child processes) at --plugins
    when given; ``must_exist``: refuse a path that does not exist (commands that only print commands for
    another machine pass False)."""
    plugins = getattr(args, "plugins", None)
    if plugins:
        if must_exist and not Path(plugins).exists():
            raise CommandError(f"--plugins {plugins}: no such file or folder (the plugins/ build folder, or a library "
                               "in it)")
        use_plugins(plugins)


def tensorrt_library(args: argparse.Namespace, name: str = TENSORRT_LIBRARY) -> Path:
    """The library ``name`` that --plugins selects (commands without an engine; engines:
    engines.plugin_library.engine_plugin_library)."""
    return plugin_library(name, getattr(args, "plugins", None))


def check_writable(path: str | os.PathLike, option: str, kind: str = "file") -> Path:
    """Fail before any work when ``path`` cannot be written: ``kind`` "file" (a file; missing folders are
    created when it is written) or "folder" (a folder that files go into). Creates nothing. Returns the
    path."""
    reason = unwritable_reason(path, kind)
    if reason is not None:
        raise CommandError(f"{option} {path}: {reason}")
    return Path(path)


# --------------------------------------------------------------------------------------------- running
EXPECTED_ERRORS = (CommandError, ValueError, OSError, RuntimeError)


def command_name(prog: str) -> str:
    """``prog``, with the rank of the process under torchrun when it is not rank 0."""
    rank = os.environ.get("RANK")
    return f"{prog} (rank {rank})" if rank not in (None, "", "0") else prog


def run_command(prog: str, main: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                expected: Sequence[type[BaseException]] = ()) -> int:
    """``main(args)`` with the shared reporting: its return value (None = 0) as the exit status; expected
    failures (EXPECTED_ERRORS: CommandError, ValueError and its kin such as the checkpoint and dataset
    errors, OSError, RuntimeError; and ``expected``) as ``prog: error: message`` and status 2 (with
    $INSTANCEVG_TRACEBACK set: the traceback instead).

    Ctrl-C and SIGTERM raise :class:`Interrupted` where the program stands, so that the writers' ``finally``
    blocks remove their temporary files; they are reported as one line and status 130 / 143 whatever
    exception the interruption turned into on its way out (a library may wrap it, or fail on a module whose
    import it cut short). A second signal during that cleanup ends the process at once."""
    received: list[int] = []

    def interrupt(signum, frame):
        received.append(signum)
        signal.signal(signum, signal.SIG_DFL)
        raise Interrupted(signum)

    previous = {}
    for signum in SIGNALS:
        try:
            previous[signum] = signal.signal(signum, interrupt)
        except ValueError:  # not the main thread: signals are left alone
            break
    name = command_name(prog)
    try:
        return int(main(args) or 0)
    except BaseException as exc:
        signum = received[0] if received else signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None
        if signum is not None:
            status, what = SIGNALS[signum]
            print(f"{name}: {what}; temporary files removed, nothing half-written left", file=sys.stderr)
            return status
        if not isinstance(exc, (*EXPECTED_ERRORS, *expected)) or os.environ.get(TRACEBACK_ENV):
            raise  # a bug, or a developer asking for the whole story
        print(f"{name}: error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
