"""Training of pose models from SLEAP labels (PyTorch). Needs ``pip install 'posestream[train]'``."""

from posestream.engine.extras import require

torch = require("torch", extra="train", feature="posestream.train")

del torch
