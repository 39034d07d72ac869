"""Export of trained models to ONNX / TensorRT / torch.export. Needs ``pip install 'posestream[train]'``."""

from posestream.engine.extras import require

torch = require("torch", extra="train", feature="posestream.export")

del torch
