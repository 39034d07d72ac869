"""Models trained by other tools, brought into posestream's export format (needs the train extra: torch).

- ``keras_graph``: SLEAP 1.x Keras models (``best_model.h5``) as torch modules, read with h5py.
- ``lightning_ckpt``: sleap-nn checkpoints (``best.ckpt``) read with torch's weights-only unpickler.
- ``sleap_nn_graph``: sleap-nn model folders as the same layer graph, run by ``KerasGraph``.
- ``importer``: ``posestream import``: either folder -> our model directory (metadata.json, model.onnx).
"""
