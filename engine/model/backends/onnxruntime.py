"""ONNX Runtime backend: CPU, and the CUDA / TensorRT execution providers of onnxruntime-gpu."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from posestream.core.errors import ConfigError, ModelFormatError
from posestream.engine.model.backends.base import Backend
from posestream.engine.model.model_dir import METADATA_KEY, ModelDir
from posestream.engine.types import ModelMetadata


def providers_for(device: str, provider: str | None = None) -> list:
    """Execution providers for ``device`` ("cpu", "cuda", "cuda:N"); ``provider`` "tensorrt" prefers
    TensorRT."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise ConfigError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    device_id = int(device.partition(":")[2] or 0)
    wanted = ["CUDAExecutionProvider"] + (["TensorrtExecutionProvider"] if provider == "tensorrt" else [])
    missing = [p for p in wanted if p not in ort.get_available_providers()]
    if missing:
        raise ConfigError(
            f"onnxruntime here has no {', '.join(missing)} (it has {ort.get_available_providers()}); "
            "install the GPU build with: pip install 'posestream[gpu]'"
        )
    chain: list = [("CUDAExecutionProvider", {"device_id": device_id})]
    if provider == "tensorrt":
        chain.insert(
            0,
            (
                "TensorrtExecutionProvider",
                {"device_id": device_id, "trt_fp16_enable": True, "trt_engine_cache_enable": True},
            ),
        )
    return chain + ["CPUExecutionProvider"]


class OnnxRuntimeBackend(Backend):
    """model.onnx in an onnxruntime session; checks that the ONNX file carries the same metadata."""

    name = "onnxruntime"

    def __init__(
        self,
        model: ModelDir,
        device: str = "cpu",
        threads: int = 0,
        provider: str | None = None,
        spin: bool = True,
    ):
        super().__init__(model)
        path = model.file("onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if not spin:  # two sessions called in turn (top-down): an idle one's spinning threads hold the cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No memory pattern: onnxruntime then takes each activation from its arena as the op needs it rather
        # than one block planned for the whole graph. Measured, fly video, 384x384 bottom-up UNet at batch 1:
        # peak RSS 313 -> 304 MB at the same speed (benchmarks/RESULTS.md "Memory").
        options.enable_mem_pattern = False
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers_for(device, provider))
        except Exception as exc:  # onnxruntime raises its own types for corrupt or foreign files
            raise ModelFormatError(
                f"{path}: onnxruntime cannot load it ({exc}); re-export the model"
            ) from exc
        embedded = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if embedded is None or ModelMetadata.from_json(embedded, str(path)) != model.metadata:
            raise ModelFormatError(
                f"{path}: its embedded metadata does not match {model.path / 'metadata.json'}; the files "
                "come from different exports. Re-export the model into an empty directory."
            )
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.check_batch(frames)
        results = self.session.run(self.output_names, {"frames": frames})
        return dict(zip(self.output_names, results))
