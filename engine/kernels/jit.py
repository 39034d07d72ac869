"""The ``kernel`` decorator, and the kernels compiled by numba's JIT.

A kernel is a plain Python function in numba's subset, compiled on its one signature
(``signatures.SIGNATURES``) either ahead of time (``build.py``) or here. ``compiled`` compiles each on that
signature only (from numba's cache after the first time), so the JIT refuses other types as the checked
ahead-of-time module does. Kernels release the GIL (postprocessing threads run them in parallel with decoding
and inference). Helpers come before the kernels that call them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numba

from posestream.engine.kernels.signatures import SIGNATURES

REGISTRY: dict[str, Callable] = {}
"""Every kernel's Python function by name (filled when the kernel modules are imported)."""


def kernel(function: Callable) -> Callable:
    """Register ``function`` (named as in ``SIGNATURES``) as a kernel; returned unchanged."""
    if function.__name__ not in SIGNATURES:
        raise KeyError(f"kernel {function.__name__}: add its signature to engine/kernels/signatures.py")
    REGISTRY[function.__name__] = function
    return function


@functools.cache
def compiled() -> dict[str, Callable]:
    """Every kernel compiled by numba's JIT on its signature alone (cached on disk, GIL released), by name."""
    missing = set(SIGNATURES) - set(REGISTRY)
    if missing:
        raise KeyError(f"signatures without a kernel: {sorted(missing)} (import the kernel modules first)")
    return {
        name: numba.njit(SIGNATURES[name], cache=True, nogil=True)(function)
        for name, function in REGISTRY.items()
    }


helper = numba.njit(cache=True, nogil=True)
"""A loop a kernel calls (compiled into each kernel that uses it; never called from Python)."""

inline_helper = numba.njit(cache=True, nogil=True, inline="always")
"""A small helper numba inlines into its caller."""
