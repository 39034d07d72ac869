"""Training of pose models from SLEAP labels (PyTorch).

Needs ``pip install 'posestream[train]'`` (torch, sleap-io, PyYAML, matplotlib);
the CLI checks for them and names the extra when one is missing.
"""
