"""Imports of optional dependencies with errors that name the extra to install, and the installed version."""

from __future__ import annotations

import importlib
from types import ModuleType

from posestream.core.errors import MissingExtraError


def require(module: str, *, extra: str, feature: str, hint: str = "") -> ModuleType:
    """Import ``module`` or raise MissingExtraError naming ``posestream[extra]`` (and ``hint``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(feature=feature, extra=extra, module=module, hint=hint) from exc


def package_version() -> str:
    """posestream's installed version ("unknown" when run from a source tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("posestream")
    except PackageNotFoundError:
        return "unknown"
