"""Every kernel's one signature: the calls it accepts, in numba's syntax, and a check of a call against it.

Kept apart from the kernels (and free of numba) so that a process running the ahead-of-time module can check
its calls: that module's argument conversion only compares item sizes, so a float64 or Fortran-order array
where the signature names a C-contiguous float32 one would crash the process or return wrong numbers. numba's
JIT, compiled on the same signatures, refuses such calls itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAPS = "float32[:, :, :, ::1]"  # (B, C, H, W)
POINTS = "float32[:, :, :, ::1]"  # (B, C, K, 2)
DOTS = "float32[:, :, :, :, ::1]"  # (B, E, K, K, S)
POSES = "float64[:, :, ::1]"  # (M or T, N, 2)
SIMILARITY = f"float64[:, ::1]({POSES}, {POSES}, float64[::1])"

SIGNATURES = {
    # peaks.py
    "candidates": f"void({MAPS}, float32, float32[:, :, ::1], int64[:, :, ::1], float32[:, :, :, :, ::1])",
    "refine": f"void(float32[:, :, :, :, ::1], {MAPS}, float32[:, :, ::1], int64[:, :, ::1], "
    "int64[:, :, ::1], int64, int64, float64, float64, int64, float32[:, :, :, ::1])",
    # grouping.py
    "pair_dots": f"void({POINTS}, boolean[:, :, ::1], float32[:, :, :, ::1], int64[:, ::1], float32, "
    f"float32[::1], {DOTS})",
    "group": f"void({POINTS}, float32[:, :, ::1], {POINTS}, {DOTS}, int64[:, ::1], float32, float64, "
    f"float64, int64, {POINTS}, float32[:, :, ::1], float32[:, ::1], int64[::1])",
    # tracking.py
    "oks": SIMILARITY,
    "centroid": SIMILARITY,
    "iou": SIMILARITY,
    "observe": f"Tuple((float64[:, ::1], float64[::1], float64[::1]))({POSES}, int64[::1], {POSES}, float64)",
    # triangulation.py
    "project_points": "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[::1], "
    "float64[:, ::1])",
    "undistort_points": "void(float64[:, ::1], float64[:, ::1], float64[::1], float64[:, ::1])",
    "triangulate_points": "void(float64[:, :, ::1], float64[:, ::1], float64[:, :, ::1], float64[:, :, ::1], "
    "float64[:, ::1], float64, int64, float64[:, ::1], uint8[:, ::1], float64[:, ::1])",
    "pair_costs": "void(float64[:, :, :, ::1], float64[:, :, :, ::1], float64[:, :, ::1], "
    "float64[:, :, ::1], float64[:, ::1], float64[:, :, ::1])",
    "triangulate_group": "void(float64[:, :, :, ::1], float64[:, :, ::1], int64[::1], float64[:, :, ::1], "
    "float64[:, :, ::1], float64[:, ::1], float64, int64, float64[:, :, ::1], uint8[:, :, ::1], "
    "float64[:, :, ::1], int64[:, ::1])",
}


@dataclass(frozen=True)
class ArrayArg:
    """An array argument: its dtype, number of dimensions, and whether it must be C-contiguous."""

    dtype: np.dtype
    ndim: int
    c_contiguous: bool

    def accepts(self, value) -> bool:
        return (
            isinstance(value, np.ndarray)
            and value.dtype == self.dtype
            and value.ndim == self.ndim
            and (value.flags.c_contiguous or not self.c_contiguous)
            and value.flags.writeable
        )

    def __str__(self) -> str:
        return f"a writable {'C-contiguous ' if self.c_contiguous else ''}{self.ndim}-d {self.dtype} array"


def array_args(signature: str) -> list[ArrayArg | None]:
    """Each argument of ``signature``: an ArrayArg, or None for a scalar (converted, or refused, when
    called)."""
    args = signature[_args_start(signature) + 1 : -1]
    found = []
    for arg in _split_top_level(args):
        match = re.fullmatch(r"(\w+)\[(.*)\]", arg.strip())
        if match is None:
            found.append(None)
            continue
        dtype, dims = match.groups()
        axes = [axis.strip() for axis in dims.split(",")]
        found.append(
            ArrayArg(np.dtype("bool" if dtype == "boolean" else dtype), len(axes), axes[-1] == "::1")
        )
    return found


def checked(name: str, function: Callable) -> Callable:
    """``function`` (a kernel of the ahead-of-time module), refusing with TypeError the calls its signature
    does not name, as numba's JIT does."""
    expected = array_args(SIGNATURES[name])

    def call(*args):
        if len(args) != len(expected):
            raise TypeError(f"kernel {name} takes {len(expected)} arguments, not {len(args)}")
        for position, (arg, want) in enumerate(zip(args, expected)):
            if want is not None and not want.accepts(arg):
                got = (
                    f"a {arg.ndim}-d {arg.dtype} array" if isinstance(arg, np.ndarray) else type(arg).__name__
                )
                raise TypeError(
                    f"kernel {name}, argument {position}: needs {want}, got {got} (signature: "
                    f"{SIGNATURES[name]})"
                )
        return function(*args)

    call.__name__ = call.__qualname__ = name
    return call


def _args_start(signature: str) -> int:
    """Index of the ``(`` that opens the argument list: the last top-level one."""
    depth, start = 0, -1
    for index, char in enumerate(signature):
        if char in "([":
            if depth == 0 and char == "(":
                start = index
            depth += 1
        elif char in ")]":
            depth -= 1
    return start


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        current += char
    return [part for part in parts + [current] if part.strip()]
