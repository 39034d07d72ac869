"""Export of trained runs to ONNX / TensorRT / torch.export model directories the engine runs.

Needs ``pip install 'posestream[train]'`` (torch, onnx); TensorRT needs ``posestream[gpu]``.
``posestream export`` checks for them and names the extra when one is missing.
"""
