"""The ``kernel`` decorator: a loop with its one signature, registered for both ways of compiling it.

Every kernel states one signature (C-contiguous arrays of fixed dtypes). ``compiled`` compiles each on it with
numba's JIT (from numba's cache after the first time) and refuses other types, exactly as the ahead-of-time module
does, so both ways of compiling take the same calls. Kernels release the GIL (postprocessing threads run them in
parallel with decoding and inference). Helpers come before the kernels that call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba


@dataclass(frozen=True)
class Kernel:
    name: str
    function: Callable  # the plain Python function (what the ahead-of-time build compiles)
    signature: str  # numba's signature syntax, e.g. "void(float32[:, ::1], int64)"
    dispatcher: numba.core.dispatcher.Dispatcher  # numba's JIT of it, compiled by ``compiled``


REGISTRY: dict[str, Kernel] = {}
"""Every kernel by name, in the order their modules define them (filled when the modules are imported)."""


def kernel(signature: str):
    """Register ``function`` as a kernel on ``signature``; compiled by ``compiled`` or by the ahead-of-time build."""
    def register(function: Callable):
        dispatcher = numba.njit(cache=True, nogil=True)(function)
        REGISTRY[function.__name__] = Kernel(function.__name__, function, signature, dispatcher)
        return dispatcher
    return register


def compiled() -> dict[str, numba.core.dispatcher.Dispatcher]:
    """Every registered kernel compiled by numba's JIT on its signature (cached, GIL released), by name."""
    for entry in REGISTRY.values():
        if not entry.dispatcher.signatures:
            entry.dispatcher.compile(entry.signature)
            entry.dispatcher.disable_compile()
    return {name: entry.dispatcher for name, entry in REGISTRY.items()}


helper = numba.njit(cache=True, nogil=True)
"""A loop a kernel calls (compiled into each kernel that uses it; never called from Python)."""

inline_helper = numba.njit(cache=True, nogil=True, inline="always")
"""A small helper numba inlines into its caller."""
