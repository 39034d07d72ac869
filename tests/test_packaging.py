"""The package's layout in pyproject.toml: every subpackage in the repository is installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    """pyproject lists packages by name: a new folder left out works in an editable install and is missing
    from a wheel (posestream.engine.kernels was, once)."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    found = set()
    for name, folder in tool["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            if "__pycache__" not in relative.parts:
                found.add(".".join([name, *relative.parts]))
    assert found, "no packages found under package-dir"
    assert found - listed == set(), (
        f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    )
