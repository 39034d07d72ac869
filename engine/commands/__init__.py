"""The Python API behind the engine's commands: ``track`` (a video into output files), ``bench`` (each stage
alone, then the whole pipeline) and ``render`` (poses drawn on their video). ``posestream.cli`` wraps them."""
