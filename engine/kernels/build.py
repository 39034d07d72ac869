"""Build the ahead-of-time kernel module: ``python -m posestream.engine.kernels.build OUT_DIR``.

``posestream.engine.kernels`` runs this in a child process the first time a machine needs the kernels. It
compiles every kernel on its signature (``signatures.SIGNATURES``) with numba's ``pycc`` into one extension
module, for this machine's CPU, with the GIL released while a kernel runs (as ``nogil=True`` does for the
JIT). Needs numba and a C compiler.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path


def build(out_dir: Path) -> None:
    """Write the extension module ``kernels.MODULE_NAME`` into ``out_dir``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc is "pending deprecation" in numba; it still builds
        import numba.pycc.compiler
        from numba.core.compiler import Flags
        from numba.pycc import CC

    class GilReleasingFlags(Flags):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    numba.pycc.compiler.Flags = (
        GilReleasingFlags  # pycc has no option for it, and makes its Flags by this name
    )

    from posestream.engine.kernels import MODULE_NAME, import_kernel_modules
    from posestream.engine.kernels.signatures import SIGNATURES

    registry = import_kernel_modules()
    cc = CC(MODULE_NAME)
    cc.output_dir = str(out_dir)
    cc.target_cpu = "host"
    cc.verbose = False
    for name, signature in SIGNATURES.items():
        cc.export(name, signature)(registry[name])
    out_dir.mkdir(parents=True, exist_ok=True)
    cc.compile()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m posestream.engine.kernels.build OUT_DIR")
    build(Path(sys.argv[1]))
