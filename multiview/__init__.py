"""Several calibrated cameras of one scene: calibration files, triangulation, 3D outputs (issue 27)."""
