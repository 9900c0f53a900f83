"""A real Triton Inference Server for the tests, from NVIDIA's nvidia-pytriton wheel.

The wheel carries ``tritonserver`` with the Python backend only (no TensorRT or ONNX Runtime backend;
it runs on the CPU) and requires numpy<2: its Python-backend stub is built against numpy 1.x. So the
server is unpacked from the wheel into the cache, never installed, and its stub runs in a small
environment of its own holding numpy 1.26 (Triton's EXECUTION_ENV_PATH); the deployment's models take
instancevg, torch and onnxruntime from the test environment (``instancevg_python_path``). The server
binds 127.0.0.1 on free ports and is stopped with its whole process group.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

from tests.wheels import cache_root, fetch_wheel, unpack

PYTRITON = ("nvidia-pytriton==0.7.0", "nvidia_pytriton-0.7.0-*.whl")
STUB_NUMPY = ("numpy==1.26.4", f"numpy-1.26.4-cp{sys.version_info.major}{sys.version_info.minor}-*.whl")
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def server_root() -> tuple[Path | None, str]:
    """The unpacked server (bin/, backends/ with the stub of this Python), or (None, why not)."""
    root = cache_root() / "nvidia-pytriton-0.7.0"
    server = root / "pytriton" / "tritonserver"
    if not (server / "bin" / "tritonserver").is_file():
        wheel, reason = fetch_wheel(*PYTRITON)
        if wheel is None:
            return None, reason
        unpack(wheel, root, ("pytriton/tritonserver/", "nvidia_pytriton.libs/"))
    stub = server / "python_backend_stubs" / PYTHON / "triton_python_backend_stub"
    if not stub.is_file():
        return None, f"{PYTRITON[0]} has no Python-backend stub for Python {PYTHON}"
    # the backend runs backends/python/triton_python_backend_stub (same depth, so its RPATH still holds)
    installed = server / "backends" / "python" / stub.name
    if not installed.is_file():
        shutil.copy2(stub, installed.with_name(stub.name + ".tmp"))
        os.replace(installed.with_name(stub.name + ".tmp"), installed)
    libpython = Path(sysconfig.get_config_var("LIBDIR") or "") / f"libpython{PYTHON}.so.1.0"
    if not libpython.is_file():
        return None, f"the stub needs libpython{PYTHON}.so.1.0, which this Python ({sys.executable}) does not have"
    return root, ""


def stub_environment() -> tuple[Path | None, str]:
    """A Python environment (venv of this interpreter, no pip) holding numpy 1.26 for the stub."""
    env = cache_root() / f"triton-stub-env-py{PYTHON}"
    site = env / "lib" / f"python{PYTHON}" / "site-packages"
    if (site / "numpy").is_dir():
        return env, ""
    wheel, reason = fetch_wheel(*STUB_NUMPY)
    if wheel is None:
        return None, reason
    shutil.rmtree(env, ignore_errors=True)  # venv scripts name their folder: built in place, numpy last
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    site.rmdir()
    unpack(wheel, site)
    return env, ""


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM it when the test process dies, even by SIGKILL."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """``tritonserver`` on 127.0.0.1 (free HTTP, gRPC and metrics ports) serving ``repository``; its log
    goes to ``log``. Use as a context manager, or call stop()."""

    def __init__(self, root: Path, repository: Path, log: Path, timeout: float = 240):
        server = root / "pytriton" / "tritonserver"
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [sysconfig.get_config_var("LIBDIR"),
                                                               str(root / "nvidia_pytriton.libs"),
                                                               env.get("LD_LIBRARY_PATH")]))
        argv = [str(server / "bin" / "tritonserver"), f"--model-repository={repository}",
                f"--backend-directory={server / 'backends'}", "--http-address=127.0.0.1",
                "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1", f"--http-port={self.http_port}",
                f"--grpc-port={self.grpc_port}", f"--metrics-port={self.metrics_port}", "--exit-on-error=true",
                "--log-verbose=0"]
        self.log = log
        self._log_file = open(log, "wb")
        # its own session: stop() ends the server and every Python stub it started, nothing else
        self.process = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with status {self.process.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"tritonserver was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's process group (Triton unloads its models, the stubs exit), SIGKILL
        after 30 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        try:  # stubs that outlived the server (none expected) go with the group
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log_file.close()

    def __enter__(self) -> "TritonServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
