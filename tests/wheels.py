"""Wheels the tests take files from (TensorRT headers, Triton's server binary, numpy 1.x for its Python
stub): downloaded once with ``pip download --no-deps`` into build/cache/wheels (or $INSTANCEVG_CACHE_DIR)
and unpacked there, never installed into the test environment."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    return Path(os.environ.get("INSTANCEVG_CACHE_DIR", REPO_ROOT / "build" / "cache"))


def fetch_wheel(requirement: str, pattern: str, timeout: float = 600) -> tuple[Path | None, str]:
    """(the cached wheel matching ``pattern``, "") or (None, why it could not be had). ``requirement``:
    what pip downloads (e.g. 'nvidia-pytriton==0.7.0'), for this interpreter and platform."""
    folder = cache_root() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob(pattern))
    if wheels:
        return wheels[-1], ""
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", str(folder)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"pip download {requirement} took longer than {timeout:.0f} s"
    wheels = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not wheels:
        return None, (f"could not download {requirement} (no network or no PyPI?): "
                      + (proc.stderr.strip().splitlines() or ["no matching wheel"])[-1])
    return wheels[-1], ""


def unpack(wheel: Path, target: Path, prefixes: tuple[str, ...] = ("",)) -> Path:
    """Extract the members of ``wheel`` under ``prefixes`` into ``target`` (once: an existing target is
    reused; a new one appears whole, by one rename, so an interrupted unpack leaves nothing behind)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging, [m for m in archive.namelist() if m.startswith(prefixes)])
            for info in archive.infolist():  # zipfile drops the permission bits: restore executables
                mode = info.external_attr >> 16
                if mode & 0o111 and (staging / info.filename).is_file():
                    os.chmod(staging / info.filename, mode & 0o777)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
