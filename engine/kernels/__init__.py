"""The engine's compiled loops: peak finding (``peaks.py``), PAF grouping (``grouping.py``), identity
tracking (``tracking.py``) and multi-camera geometry (``triangulation.py``).

They are written once, in numba's subset of Python, each kernel with its one signature (``signatures.py``,
which also checks calls), and compiled one of two ways:

- **ahead of time** (the default): the first process on a machine that needs them builds one extension module
  with numba's ``pycc``, in a child process (about 15 s, once). Every later process imports that module and
  never loads numba or LLVM, which saves about 125 MB of memory per process. The module is kept under
  ``~/.cache/posestream/kernels`` (``POSESTREAM_CACHE_DIR`` moves it), keyed by the kernels' source, the
  numba, numpy and Python versions and the CPU, so a change to any of them builds it again.
- **by numba's JIT**, in the process: compiled when first loaded, then loaded from numba's cache. This is the
  fallback when the ahead-of-time build fails (it needs a C compiler), with a warning that says why.

``POSESTREAM_KERNELS`` chooses: ``auto`` (the default: ahead of time, else the JIT), ``aot`` (ahead of time or
an error), ``jit``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
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
from types import SimpleNamespace

from posestream.core.errors import ConfigError, PosestreamError
from posestream.engine.kernels.signatures import SIGNATURES, checked

try:
    import fcntl  # the build lock (POSIX); without it, the kernels run on numba's JIT
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MODULE_NAME = "posestream_kernels"
"""The extension module's name (its init function is named after it, so it cannot change per build)."""
KERNEL_MODULES = ("peaks", "grouping", "tracking", "triangulation")
"""The modules that define kernels (``@kernel``); every ``.py`` file of this package is part of a build's
key."""
BUILD_TIMEOUT_S = 600.0
"""How long a build may take before it is stopped (another process waits a minute longer for it)."""
MODES = ("auto", "aot", "jit")

log = logging.getLogger("posestream")
_lock = threading.Lock()
_loaded: SimpleNamespace | None = None
_how = "not loaded yet"


class KernelBuildError(PosestreamError, RuntimeError):
    """The ahead-of-time kernel module could not be built or imported."""


def load() -> SimpleNamespace:
    """The kernels by name (``signatures.SIGNATURES``: ``candidates``, ``refine``, ``pair_dots``, ``group``,
    ``oks``, ``centroid``, ``iou``, ``observe``, ``project_points``, ``undistort_points``,
    ``triangulate_points``), compiled ahead of time or by numba's JIT as
    ``POSESTREAM_KERNELS`` says; loaded once per process. Each refuses, with TypeError, arrays its signature
    does not name."""
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
        raise ConfigError(
            f"POSESTREAM_KERNELS={chosen!r}: use one of {', '.join(MODES)} (auto: compiled ahead of "
            "time, else by numba's JIT)"
        )
    return chosen


def _load(chosen: str) -> tuple[SimpleNamespace, str]:
    if chosen == "jit":
        return jit_kernels(), "numba JIT (POSESTREAM_KERNELS=jit)"
    try:
        checked_kernels, path = ahead_of_time_kernels()
    except KernelBuildError as exc:
        if chosen == "aot":
            raise
        log.warning("posestream: the kernels run on numba's JIT instead (about 125 MB more memory): %s", exc)
        return jit_kernels(), "numba JIT (no ahead-of-time module: see the warning)"
    return checked_kernels, f"ahead of time ({path})"


def import_kernel_modules() -> dict:
    """Import the modules that define kernels (numba with them) and return every kernel's Python function by
    name."""
    for name in KERNEL_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    from posestream.engine.kernels.jit import REGISTRY

    return REGISTRY


@functools.cache
def jit_kernels() -> SimpleNamespace:
    """Every kernel compiled by numba in this process (from numba's cache after the first time)."""
    import_kernel_modules()
    from posestream.engine.kernels.jit import compiled

    return SimpleNamespace(**compiled())


@functools.cache
def ahead_of_time_kernels() -> tuple[SimpleNamespace, Path]:
    """Every kernel of the ahead-of-time module for this machine, each checking its arguments, and the
    module's path; the module is built first if there is none (one build at a time across processes)."""
    if fcntl is None:
        raise KernelBuildError("the ahead-of-time build needs a POSIX system (its lock uses fcntl)")
    home = cache_dir()
    key = build_key()
    target = home / key
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock = open(home / f"{key}.lock", "a")  # noqa: SIM115 (held open by _build_lock)
    except OSError as exc:  # a read-only or full cache folder
        raise KernelBuildError(
            f"cannot write the kernel cache in {home} ({exc}); set POSESTREAM_CACHE_DIR to a writable folder"
        ) from exc
    with lock, _build_lock(lock):
        failed = home / f"{key}.failed"
        if failed.exists():
            raise KernelBuildError(
                f"it failed before on this machine ({failed} says why; delete it to try again)"
            )
        if not _module_file(target):
            _build(target, failed)
    path = _module_file(target)
    try:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise KernelBuildError(f"{path} does not import ({exc}); delete {target} to build it again") from exc
    return SimpleNamespace(**{name: checked(name, getattr(module, name)) for name in SIGNATURES}), path


def cache_dir() -> Path:
    """Where built modules are kept: ``POSESTREAM_CACHE_DIR``/kernels, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) /posestream/kernels."""
    if os.environ.get("POSESTREAM_CACHE_DIR"):
        return Path(os.environ["POSESTREAM_CACHE_DIR"]).expanduser() / "kernels"
    return (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
        / "posestream"
        / "kernels"
    )


def build_key() -> str:
    """What a built module depends on: the kernels' source, numba, numpy, the Python ABI, and the CPU (the
    module is compiled for this CPU's instruction set)."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    for part in (
        importlib.metadata.version("numba"),
        importlib.metadata.version("numpy"),
        sys.implementation.cache_tag,
        platform.machine(),
        _cpu_flags(),
    ):
        digest.update(part.encode())
    return f"{sys.implementation.cache_tag}-{digest.hexdigest()[:16]}"


CPU_FIELDS = (
    "model name",
    "flags",
    "CPU implementer",
    "CPU architecture",
    "CPU variant",
    "CPU part",
    "Features",
)
"""The lines of /proc/cpuinfo that name a CPU and its instruction sets (x86: the first two; ARM: the rest)."""


def _cpu_flags() -> str:
    """The CPU's model and instruction-set flags (Linux), else the processor's name."""
    lines = []
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    found = [next((line for line in lines if line.startswith(field)), "") for field in CPU_FIELDS]
    return "\n".join(found) if any(found) else platform.processor()


def _module_file(target: Path) -> Path | None:
    found = sorted(target.glob(f"{MODULE_NAME}*.so")) + sorted(target.glob(f"{MODULE_NAME}*.pyd"))
    return found[0] if found else None


def _build(target: Path, failed: Path) -> None:
    """Build the module into ``target`` in a child process (numba and LLVM stay out of this one). When the
    build itself fails, record why in ``failed`` so that later runs do not try again; a build stopped by a
    timeout or a signal (e.g. out of memory) is not recorded, and the next run tries again."""
    staging = target.with_name(target.name + f".building-{os.getpid()}")
    _say("compiling the engine's kernels for this machine, once (about 15 s) ...")
    started = time.perf_counter()
    command = [sys.executable, "-m", "posestream.engine.kernels.build", str(staging)]
    # The child finds posestream (and everything else) where this process does.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
        output = (result.stdout + result.stderr).strip()
        if result.returncode > 0 or (result.returncode == 0 and _module_file(staging) is None):
            failed.write_text(f"{' '.join(command)}\n\n{output}\n")
            raise KernelBuildError(
                f"the ahead-of-time build failed ({_reason(output)}); it needs a C compiler "
                f"(cc); the whole output is in {failed}"
            )
        if result.returncode < 0:
            raise KernelBuildError(
                f"the ahead-of-time build was stopped by signal {-result.returncode} "
                f"({_reason(output)}); the next run tries again"
            )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except subprocess.TimeoutExpired:
        raise KernelBuildError(
            f"the ahead-of-time build took more than {BUILD_TIMEOUT_S:.0f} s and was stopped; "
            "the next run tries again"
        ) from None
    except OSError as exc:  # the child could not start, or the cache folder filled up
        raise KernelBuildError(f"the ahead-of-time build could not run or be kept ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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
def _build_lock(handle):
    """One build per key at a time across processes (a lock on the open file ``handle``); waits for a build
    under way at most a minute longer than a build may take."""
    deadline = time.monotonic() + BUILD_TIMEOUT_S + 60.0
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise KernelBuildError(
                    f"another process has held {handle.name} for {BUILD_TIMEOUT_S + 60:.0f} s; "
                    "is a build stuck?"
                ) from None
            time.sleep(0.1)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
