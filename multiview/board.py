"""A calibration board as anipose describes it (``board.toml``), its corners' positions on the board, and
their detection in images by OpenCV's ArUco module.

ChArUco boards (``marker_length`` given) and checkerboards (without it). Corners are numbered as OpenCV
numbers a ChArUco board's: row by row, ``board_x - 1`` to a row; a corner's position is
((column + 1) * square_length, (row + 1) * square_length, 0).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.extras import require

ARUCO_DICTIONARIES = {(4, 50): "DICT_4X4_50", (4, 100): "DICT_4X4_100", (4, 250): "DICT_4X4_250",
                      (4, 1000): "DICT_4X4_1000", (5, 50): "DICT_5X5_50", (5, 100): "DICT_5X5_100",
                      (5, 250): "DICT_5X5_250", (5, 1000): "DICT_5X5_1000", (6, 50): "DICT_6X6_50",
                      (6, 100): "DICT_6X6_100", (6, 250): "DICT_6X6_250", (6, 1000): "DICT_6X6_1000",
                      (7, 50): "DICT_7X7_50", (7, 100): "DICT_7X7_100", (7, 250): "DICT_7X7_250",
                      (7, 1000): "DICT_7X7_1000"}  # fmt: skip


@dataclass(frozen=True)
class Board:
    """``board_x`` by ``board_y`` squares of ``square_length`` (the calibration's unit, e.g. mm)."""

    board_x: int
    board_y: int
    square_length: float
    marker_length: float | None = None  # None: a checkerboard
    marker_bits: int = 4
    dict_size: int = 1000

    def __post_init__(self):
        if self.board_x < 2 or self.board_y < 2 or self.square_length <= 0:
            raise ConfigError(
                f"board {self.board_x}x{self.board_y} squares of {self.square_length}: a board needs "
                "at least 2x2 squares of a positive length"
            )
        if self.marker_length is not None and (self.marker_bits, self.dict_size) not in ARUCO_DICTIONARIES:
            raise ConfigError(
                f"board: marker_bits={self.marker_bits}, dict_size={self.dict_size} is not an ArUco "
                f"dictionary; use one of {sorted(ARUCO_DICTIONARIES)}"
            )

    @property
    def n_corners(self) -> int:
        return (self.board_x - 1) * (self.board_y - 1)

    def object_points(self) -> np.ndarray:
        """Every corner's position on the board (n_corners, 3), z = 0."""
        ids = np.arange(self.n_corners)
        columns, rows = ids % (self.board_x - 1), ids // (self.board_x - 1)
        return (
            np.stack([(columns + 1) * self.square_length, (rows + 1) * self.square_length, 0 * ids], 1) * 1.0
        )

    def adjacent_pairs(self) -> np.ndarray:
        """Corner ids (M, 2) of neighbours along rows and columns: ``square_length`` apart."""
        per_row = self.board_x - 1
        ids = np.arange(self.n_corners).reshape(self.board_y - 1, per_row)
        along = np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1)
        across = np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)
        return np.concatenate([along, across])


def read_board(path: str | Path) -> Board:
    """The board of an anipose ``board.toml`` (board_x, board_y, square_length; marker_length, marker_bits,
    dict_size for ChArUco)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such board file (anipose's board.toml)")
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not a TOML file ({exc})") from exc
    missing = [k for k in ("board_x", "board_y", "square_length") if k not in table]
    if missing:
        raise ConfigError(f"{path}: lacks {missing}; a board needs board_x, board_y and square_length")
    charuco = "marker_length" in table and str(table.get("board_type", "charuco")).lower() == "charuco"
    return Board(
        board_x=int(table["board_x"]),
        board_y=int(table["board_y"]),
        square_length=float(table["square_length"]),
        marker_length=float(table["marker_length"]) if charuco else None,
        marker_bits=int(table.get("marker_bits", 4)),
        dict_size=int(table.get("dict_size", 1000)),
    )


class CornerDetector:
    """Finds a board's corners in gray images: (n_corners, 2) pixels, NaN where a corner was not found."""

    def __init__(self, board: Board):
        self.cv2 = require("cv2", extra="calibration", feature="board detection (posestream calibrate)")
        self.board = board
        if board.marker_length is not None:
            aruco = self.cv2.aruco
            dictionary = aruco.getPredefinedDictionary(
                getattr(aruco, ARUCO_DICTIONARIES[(board.marker_bits, board.dict_size)])
            )
            charuco = aruco.CharucoBoard(
                (board.board_x, board.board_y), board.square_length, board.marker_length, dictionary
            )
            self.detector = aruco.CharucoDetector(charuco)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        corners = np.full((self.board.n_corners, 2), np.nan)
        if self.board.marker_length is None:
            return self._checkerboard(gray, corners)
        found, ids, _, _ = self.detector.detectBoard(gray)
        if ids is not None and len(ids) > 0:
            corners[ids.ravel()] = found.reshape(-1, 2)
        return corners

    def _checkerboard(self, gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
        cv2 = self.cv2
        size = (self.board.board_x - 1, self.board.board_y - 1)
        ok, found = cv2.findChessboardCorners(
            gray, size, cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        )
        if ok:
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 30, 0.01)
            corners[:] = cv2.cornerSubPix(gray, found, (5, 5), (-1, -1), criteria).reshape(-1, 2)
        return corners
