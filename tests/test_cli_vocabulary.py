"""One CLI vocabulary (instancevg/cli/arguments.py): every command's parser, the shared flags identical across
commands, help text without reStructuredText, the one error/interrupt reporting (run_command), the output
checks and the plugin library lookup."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
from pathlib import Path

import pytest

from instancevg.cli import arguments
from instancevg.cli.arguments import (CommandError, Interrupted, OUTPUT_HELP, check_writable, command_name,
                                      run_command)
from instancevg.io import atomic_path
from instancevg.plugin_paths import (PLUGINS_ENV, TENSORRT_LIBRARY, TENSORRT_STATIC_LIBRARY, library_in,
                                     plugin_library, search_dirs)

REPO = Path(__file__).resolve().parents[1]
# the console scripts of setup.py: every command, found where users find them
ENTRY_POINTS = dict(re.findall(r'"(instancevg-[a-z-]+)=([\w.]+):main"', (REPO / "setup.py").read_text()))
SHARED = ("--config", "--checkpoint", "--tokenizer", "--random-weights", "--trust-checkpoint", "--device", "--ops",
          "--precision", "--tf32", "--cuda-graph", "--plugins", "--data-root", "--format", "--no-progress")
RST = re.compile(r"``|:(func|class|meth|mod|attr|data|exc|obj|ref|doc):`")


def parsers() -> dict[str, argparse.ArgumentParser]:
    return {prog: importlib.import_module(module).build_parser() for prog, module in ENTRY_POINTS.items()}


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_every_command_is_covered():
    assert len(ENTRY_POINTS) == 11 and set(parsers()) == set(ENTRY_POINTS)
    for prog, parser in parsers().items():
        assert parser.prog == prog


@pytest.mark.parametrize("prog", sorted(ENTRY_POINTS))
def test_every_option_has_a_help_line_and_no_markup(prog):
    parser = parsers()[prog]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip(), f"{prog} {action.option_strings or action.dest}: no help"
    text = parser.format_help()
    assert not RST.search(text), f"{prog} --help shows reStructuredText markup: {RST.search(text).group()}"
    assert "%(" not in text  # every argparse placeholder was filled


def test_shared_flags_are_one_definition():
    seen: dict[str, dict[str, tuple]] = {}
    for prog, parser in parsers().items():
        for flag, action in options(parser).items():
            if flag in SHARED:
                seen.setdefault(flag, {})[prog] = (action.help, action.default, repr(action.choices),
                                                   action.metavar, action.type, tuple(action.option_strings),
                                                   type(action).__name__)
    for flag, by_command in seen.items():
        assert len(set(by_command.values())) == 1, f"{flag} differs across {sorted(by_command)}"
    # where each shared flag is offered
    where = {flag: set(by_command) for flag, by_command in seen.items()}
    assert where["--config"] == {"instancevg-predict", "instancevg-export", "instancevg-train", "instancevg-eval",
                                 "instancevg-bench"}
    assert where["--plugins"] == {"instancevg-predict", "instancevg-export", "instancevg-eval", "instancevg-bench",
                                  "instancevg-demo", "instancevg-build-engine", "instancevg-triton",
                                  "instancevg-debug-precision"}
    assert where["--tokenizer"] == {"instancevg-predict", "instancevg-train", "instancevg-eval", "instancevg-bench",
                                    "instancevg-triton", "instancevg-export"}  # export: INT8 calibration
    assert where["--device"] == {"instancevg-predict", "instancevg-train", "instancevg-eval", "instancevg-bench"}
    assert where["--ops"] == {"instancevg-predict", "instancevg-eval", "instancevg-bench"}
    assert where["--data-root"] == {"instancevg-train", "instancevg-eval"}
    # one default for --config (resolved per command: the graph's, else tiny) and for --device
    config = next(iter(seen["--config"].values()))
    assert config[1] is None and "else tiny" in config[0]
    assert next(iter(seen["--device"].values()))[1] == "cpu"


def test_every_command_that_writes_has_the_same_output_option():
    for prog, parser in parsers().items():
        flags = options(parser)
        if prog == "instancevg-train":  # writes into --work-dir (checked the same way)
            assert "-o" not in flags and "checked writable before any work starts" in flags["--work-dir"].help
            continue
        output = flags["-o"]
        assert output is flags["--output"], prog
        assert OUTPUT_HELP in output.help, prog
        if output.default is not None:
            assert output.help.endswith(f"{OUTPUT_HELP} (default: {output.default})"), prog


def test_model_config_resolution():
    namespace = argparse.Namespace
    assert arguments.model_config(namespace(config=None)) == "tiny"
    assert arguments.model_config(namespace(config=None), "gres-base") == "gres-base"
    assert arguments.model_config(namespace(config="refcoco-base"), "gres-base") == "refcoco-base"


# ------------------------------------------------------------------ run_command
def test_run_command_status_and_messages(capsys):
    assert run_command("p", lambda args: None, None) == 0
    assert run_command("p", lambda args: 1, None) == 1
    for error, message in ((CommandError("bad -o"), "bad -o"), (ValueError("bad value"), "bad value"),
                           (FileNotFoundError("x: file not found"), "x: file not found"),
                           (RuntimeError(), "RuntimeError")):
        def fail(args, error=error):
            raise error
        assert run_command("prog", fail, None) == 2
        assert capsys.readouterr().err == f"prog: error: {message}\n"


def test_run_command_lets_bugs_through_and_shows_tracebacks_on_request(monkeypatch, capsys):
    def bug(args):
        raise TypeError("a bug")
    with pytest.raises(TypeError):  # not an expected failure: the traceback is the report
        run_command("p", bug, None)

    def fail(args):
        raise ValueError("bad")
    monkeypatch.setenv("INSTANCEVG_TRACEBACK", "1")
    with pytest.raises(ValueError, match="bad"):
        run_command("p", fail, None)
    monkeypatch.delenv("INSTANCEVG_TRACEBACK")
    assert run_command("p", fail, None, expected=()) == 2
    assert run_command("p", lambda args: (_ for _ in ()).throw(KeyError("k")), None, expected=(KeyError,)) == 2
    assert capsys.readouterr().err.count("p: error:") == 2


def test_rank_in_the_prefix_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    assert command_name("instancevg-eval") == "instancevg-eval"
    monkeypatch.setenv("RANK", "3")
    assert run_command("instancevg-eval", lambda args: (_ for _ in ()).throw(ValueError("v")), None) == 2
    assert capsys.readouterr().err == "instancevg-eval (rank 3): error: v\n"


@pytest.mark.parametrize("signum,status,what", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                 (signal.SIGINT, 130, "interrupted (Ctrl-C)")])
def test_signal_during_a_write_removes_the_temporary_file(tmp_path, capsys, signum, status, what):
    """The signal arrives while a file is half-written: one line, the status, no file, no temporary file;
    the handlers in place before are back afterwards."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def write(args):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text('{"half": ')
            assert [p.name for p in tmp_path.iterdir()] == [tmp.name]
            os.kill(os.getpid(), signum)
            raise AssertionError("not reached: the signal interrupts the write")

    assert run_command("p", write, None) == status
    assert capsys.readouterr().err == f"p: {what}; temporary files removed, nothing half-written left\n"
    assert list(tmp_path.iterdir()) == []
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_interruption_wrapped_by_a_library_is_still_an_interruption(capsys):
    """A library that turns the interruption into its own error (or fails on a module whose import it cut
    short) is still reported as the interruption, not as an error or a traceback."""
    def work(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except Interrupted:
            raise AttributeError("partially initialized module 'x' has no attribute 'y'") from None

    assert run_command("p", work, None) == 143
    assert capsys.readouterr().err.startswith("p: terminated (SIGTERM)")


# ------------------------------------------------------------------ outputs checked before any work
def test_check_writable(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    assert check_writable(tmp_path / "new" / "deeper" / "r.json", "-o") == tmp_path / "new" / "deeper" / "r.json"
    assert check_writable(tmp_path / "repo", "-o", "folder") == tmp_path / "repo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing created, no probe left
    for path, kind, message in ((blocker / "r.json", "file", f"cannot write in {blocker}: not a folder"),
                                (blocker / "a" / "b.json", "file", f"cannot write in {blocker}: not a folder"),
                                (tmp_path, "file", "is a folder; give a file name"),
                                (blocker, "folder", "exists and is not a folder"),
                                (Path("/proc/instancevg-report.json"), "file", "cannot write in /proc")):
        with pytest.raises(CommandError, match=re.escape(f"-o {path}: {message}")):
            check_writable(path, "-o", kind)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(CommandError, match="Permission denied"):
        check_writable(folder / "r.json", "--save-predictions")


# ------------------------------------------------------------------ --plugins
def test_plugin_library_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    build, other = tmp_path / "build", tmp_path / "other"
    for folder in (build, other):
        folder.mkdir()
        for name in (TENSORRT_LIBRARY, TENSORRT_STATIC_LIBRARY):
            (folder / name).write_bytes(b"\x7fELF")
    # --plugins: the build folder or any library in it, and only there
    assert plugin_library(TENSORRT_LIBRARY, build) == build / TENSORRT_LIBRARY
    assert plugin_library(TENSORRT_STATIC_LIBRARY, build / TENSORRT_LIBRARY) == build / TENSORRT_STATIC_LIBRARY
    assert plugin_library("libnone.so", build) == build / "libnone.so"  # missing: the error names it
    assert library_in(build / TENSORRT_STATIC_LIBRARY, TENSORRT_STATIC_LIBRARY) == build / TENSORRT_STATIC_LIBRARY
    # an engine's recorded library (or its sibling) comes before $INSTANCEVG_PLUGINS when it exists
    monkeypatch.setenv(PLUGINS_ENV, str(other))
    assert plugin_library(TENSORRT_LIBRARY, recorded=build / TENSORRT_LIBRARY) == build / TENSORRT_LIBRARY
    assert plugin_library(TENSORRT_STATIC_LIBRARY, recorded=build / TENSORRT_LIBRARY) == build / TENSORRT_STATIC_LIBRARY
    assert plugin_library(TENSORRT_LIBRARY, recorded=tmp_path / "gone" / TENSORRT_LIBRARY) == other / TENSORRT_LIBRARY
    assert plugin_library(TENSORRT_LIBRARY, build, recorded=other / TENSORRT_LIBRARY) == build / TENSORRT_LIBRARY
    assert search_dirs() == [other]  # the kernel loader looks there only
    monkeypatch.setenv(PLUGINS_ENV, str(other / TENSORRT_LIBRARY))
    assert search_dirs() == [other]
    # nothing given: ./build/plugins
    monkeypatch.delenv(PLUGINS_ENV)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").rename(tmp_path / "plugins")
    (tmp_path / "build").mkdir()
    (tmp_path / "plugins").rename(tmp_path / "build" / "plugins")
    assert plugin_library(TENSORRT_LIBRARY) == tmp_path / "build" / "plugins" / TENSORRT_LIBRARY


def test_apply_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "unchanged")
    arguments.apply_plugins(argparse.Namespace(plugins=None))
    assert os.environ[PLUGINS_ENV] == "unchanged"
    with pytest.raises(CommandError, match=r"--plugins .*none: no such file or folder"):
        arguments.apply_plugins(argparse.Namespace(plugins=str(tmp_path / "none")))
    arguments.apply_plugins(argparse.Namespace(plugins=str(tmp_path / "none")), must_exist=False)
    assert os.environ[PLUGINS_ENV] == str(tmp_path / "none")
