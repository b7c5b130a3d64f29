"""Small helpers for building event columns from per-user counts."""

from __future__ import annotations

import numpy as np

Frame = dict[str, np.ndarray]


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner position and 0-based rank within owner for `counts[i]` events per owner i."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(owner)) - starts[owner]
    return owner, rank


def concat(frames: list[Frame]) -> Frame:
    """Row-wise concatenation of frames that share the same columns."""
    frames = [frame for frame in frames if len(next(iter(frame.values())))]
    if not frames:
        return {}
    return {column: np.concatenate([frame[column] for frame in frames]) for column in frames[0]}


def frame_length(frame: Frame) -> int:
    return len(next(iter(frame.values()))) if frame else 0


def select(frame: Frame, mask: np.ndarray) -> Frame:
    """The rows of a frame where mask is true."""
    return {column: values[mask] for column, values in frame.items()}
