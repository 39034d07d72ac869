"""An exported model directory: ``metadata.json`` plus the model files it describes.

    MODEL_DIR/
      metadata.json   what the engine needs (types.ModelMetadata), also embedded in model.onnx
      model.onnx      onnxruntime (any precision; metadata.precision says which)
      model.plan      TensorRT engine (optional)
      model.pt2       torch.export program (optional)

``posestream export RUN_DIR -o MODEL_DIR`` writes one. The engine refuses a
directory without metadata, or with metadata of an unknown version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from posestream.core.errors import ConfigError, ModelFormatError, ModelNotFoundError
from posestream.engine.types import ModelMetadata

MODEL_FILES = {"onnx": "model.onnx", "tensorrt": "model.plan", "torch": "model.pt2"}
BUILTIN_MODELS = {"demo": Path(__file__).parent / "builtin" / "demo"}
"""Models shipped inside the package, by name (``-m demo``)."""
METADATA_KEY = "posestream"  # key of the metadata JSON in model.onnx's metadata_props
EXPORT_HINT = "export a trained run with: posestream export RUN_DIR -o MODEL_DIR"


@dataclass(frozen=True)
class ModelDir:
    path: Path
    metadata: ModelMetadata

    def file(self, fmt: str) -> Path:
        """The model file for format ``fmt`` ("onnx", "tensorrt", "torch"); a clear error if absent."""
        path = self.path / MODEL_FILES[fmt]
        if not path.exists():
            have = [f for f, name in MODEL_FILES.items() if (self.path / name).exists()]
            raise ModelNotFoundError(
                f"{self.path}: no {MODEL_FILES[fmt]} (this directory has formats {have}); "
                f"re-export with: posestream export RUN_DIR -o {self.path} --format {fmt}"
            )
        return path

    def has(self, fmt: str) -> bool:
        return (self.path / MODEL_FILES[fmt]).exists()


def load_model_dir(path: str | os.PathLike) -> ModelDir:
    """Read and validate MODEL_DIR/metadata.json; a name of BUILTIN_MODELS ("demo") means that model."""
    if str(path) in BUILTIN_MODELS and not Path(path).exists():
        path = BUILTIN_MODELS[str(path)]
    path = Path(path)
    if not path.is_dir():
        raise ModelNotFoundError(f"{path}: no such model directory; {EXPORT_HINT}")
    meta_path = path / "metadata.json"
    if not meta_path.exists():
        raise ModelFormatError(
            f"{path}: no metadata.json, so the engine cannot tell how to run it; {EXPORT_HINT}"
        )
    try:
        metadata = ModelMetadata.from_json(meta_path.read_text(), source=str(meta_path))
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from exc
    return ModelDir(path, metadata)
