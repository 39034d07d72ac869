"""The engine's compiled loops: peak finding (``peaks.py``), PAF grouping (``grouping.py``) and identity tracking
(``tracking.py``).

They are written once, in numba's subset of Python, each kernel with its one signature (``jit.kernel``), and
compiled one of two ways:

- **ahead of time** (the default): the first process on a machine that needs them builds one extension module with
  numba's ``pycc``, in a child process (about 15 s, once). Every later process imports that module and never loads
  numba or LLVM, which saves about 125 MB of memory per process. The module is kept under
  ``~/.cache/posestream/kernels`` (``POSESTREAM_CACHE_DIR`` moves it), keyed by the kernels' source, the numba,
  numpy and Python versions and the CPU, so a change to any of them builds it again.
- **by numba's JIT**, in the process: compiled when first loaded, then loaded from numba's cache. This is the
  fallback when the ahead-of-time build fails (it needs a C compiler), with a warning that says why.

``POSESTREAM_KERNELS`` chooses: ``auto`` (the default: ahead of time, else the JIT), ``aot`` (ahead of time or an
error), ``jit``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

from ..errors import ConfigError, PosestreamError

MODULE_NAME = "posestream_kernels"
"""The extension module's name (its init function is named after it, so it cannot change per build)."""
SOURCES = ("jit.py", "peaks.py", "grouping.py", "tracking.py", "build.py")
"""The files a built module is made from (their bytes are part of its key)."""
BUILD_TIMEOUT_S = 600.0
"""How long a build may take, and how long another process waits for one under way, before giving up."""
MODES = ("auto", "aot", "jit")

log = logging.getLogger("posestream")
_lock = threading.Lock()
_loaded: ModuleType | SimpleNamespace | None = None
_how = "not loaded yet"


class KernelBuildError(PosestreamError, RuntimeError):
    """The ahead-of-time kernel module could not be built or imported."""


def load() -> ModuleType | SimpleNamespace:
    """The kernels by name (``candidates``, ``refine``, ``pair_dots``, ``group``, ``oks``, ``centroid``, ``iou``,
    ``observe``), compiled ahead of time or by numba's JIT as ``POSESTREAM_KERNELS`` says; loaded once per process."""
    global _loaded, _how
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded, _how = _load(mode())
    return _loaded


def how_compiled() -> str:
    """One line for run summaries: which way the kernels of this process were compiled, and from where."""
    return _how


def mode() -> str:
    """``POSESTREAM_KERNELS``, checked."""
    chosen = os.environ.get("POSESTREAM_KERNELS", "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise ConfigError(f"POSESTREAM_KERNELS={chosen!r}: use one of {', '.join(MODES)} (auto: compiled ahead of "
                          "time, else by numba's JIT)")  # fmt: skip
    return chosen


def _load(chosen: str) -> tuple[ModuleType | SimpleNamespace, str]:
    if chosen == "jit":
        return jit_kernels(), "numba JIT (POSESTREAM_KERNELS=jit)"
    try:
        module, path = ahead_of_time_kernels()
    except KernelBuildError as exc:
        if chosen == "aot":
            raise
        log.warning("posestream: the kernels run on numba's JIT instead (about 125 MB more memory): %s", exc)
        return jit_kernels(), "numba JIT (no ahead-of-time module: see the warning)"
    return module, f"ahead of time ({path})"


@functools.cache
def jit_kernels() -> SimpleNamespace:
    """Every kernel compiled by numba in this process (from numba's cache after the first time)."""
    from . import grouping, peaks, tracking  # noqa: F401  (importing them registers the kernels)
    from .jit import compiled

    return SimpleNamespace(**compiled())


@functools.cache
def ahead_of_time_kernels() -> tuple[ModuleType, Path]:
    """The ahead-of-time module for this machine, built first if there is none (one build at a time)."""
    home = cache_dir()
    key = build_key()
    target = home / key
    failed = home / f"{key}.failed"
    try:
        home.mkdir(parents=True, exist_ok=True)
        with _build_lock(home / f"{key}.lock"):
            if failed.exists():
                raise KernelBuildError(f"it failed before on this machine ({failed} says why; delete it to try again)")
            if not _module_file(target):
                _build(target, failed)
    except OSError as exc:  # a read-only or full cache folder
        raise KernelBuildError(f"cannot write the kernel cache in {home} ({exc}); set POSESTREAM_CACHE_DIR to a "
                               "writable folder") from exc  # fmt: skip
    path = _module_file(target)
    try:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise KernelBuildError(f"{path} does not import ({exc}); delete {target} to build it again") from exc
    return module, path


def cache_dir() -> Path:
    """Where built modules are kept: ``POSESTREAM_CACHE_DIR``/kernels, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    /posestream/kernels."""
    if os.environ.get("POSESTREAM_CACHE_DIR"):
        return Path(os.environ["POSESTREAM_CACHE_DIR"]).expanduser() / "kernels"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "posestream" / "kernels"


def build_key() -> str:
    """What a built module depends on: the kernels' source, numba, numpy, the Python ABI, and the CPU (the module
    is compiled for this CPU's instruction set)."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in SOURCES:
        digest.update((here / name).read_bytes())
    for part in (importlib.metadata.version("numba"), importlib.metadata.version("numpy"),
                 sys.implementation.cache_tag, platform.machine(), _cpu_flags()):  # fmt: skip
        digest.update(part.encode())
    return f"{sys.implementation.cache_tag}-{digest.hexdigest()[:16]}"


def _cpu_flags() -> str:
    """The CPU's model and instruction-set flags (Linux), else the processor's name."""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        fields = [next((line for line in lines if line.startswith(field)), "") for field in ("model name", "flags")]
        return "\n".join(fields)
    return platform.processor()


def _module_file(target: Path) -> Path | None:
    found = sorted(target.glob(f"{MODULE_NAME}*.so")) + sorted(target.glob(f"{MODULE_NAME}*.pyd"))
    return found[0] if found else None


def _build(target: Path, failed: Path) -> None:
    """Build the module into ``target`` in a child process (numba and LLVM stay out of this one); on failure,
    record why in ``failed`` so that later runs do not try again."""
    staging = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _say("compiling the engine's kernels for this machine, once (about 15 s) ...")
    started = time.perf_counter()
    command = [sys.executable, "-m", "posestream.engine.kernels.build", str(staging)]
    try:
        # The child finds posestream (and everything else) where this process does.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
        output = (result.stdout + result.stderr).strip()
        ok = result.returncode == 0 and _module_file(staging) is not None
    except subprocess.TimeoutExpired:
        ok, output = False, f"the build took more than {BUILD_TIMEOUT_S:.0f} s and was stopped"
    if not ok:
        shutil.rmtree(staging, ignore_errors=True)
        failed.write_text(f"{' '.join(command)}\n\n{output}\n")
        raise KernelBuildError(f"the ahead-of-time build failed ({_reason(output)}); it needs a C compiler (cc); "
                               f"the whole output is in {failed}")  # fmt: skip
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _say(f"kernels compiled in {time.perf_counter() - started:.0f} s, kept in {target}")


def _say(message: str) -> None:
    """A line on stderr while the build runs (it happens once per machine, before any progress bar)."""
    print(f"posestream: {message}", file=sys.stderr, flush=True)


def _reason(output: str) -> str:
    """The build's error in one line: its last exception line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()] or ["no output"]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return (errors or lines)[-1][:200]


@contextlib.contextmanager
def _build_lock(path: Path):
    """One build per key at a time across processes; waits at most BUILD_TIMEOUT_S for a build under way."""
    with open(path, "a") as handle:
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KernelBuildError(f"another process has held {path} for {BUILD_TIMEOUT_S:.0f} s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
