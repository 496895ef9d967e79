"""Which optical channel carries a pulse: clipped and flat channels are passed over.

A PPG sensor gives more than one channel (the MAX30102 red and infrared, a phone camera red,
green and blue). A channel stuck at the converter's limit or at one level carries no pulse even
when another one does: Welltory subject 20's camera red sits at 255 for most of the recording
while its green pulses. :func:`pick_channel` takes the first channel in order of preference
that is neither clipped nor flat, else the one least so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["clipped_share", "is_usable", "pick_channel"]

#: A channel is clipped when more than this share of its samples sit at its extreme values.
CLIP_SHARE_MAX = 0.2
#: Samples within this share of the channel's range from its extreme count as at the extreme.
CLIP_MARGIN = 0.002
#: A channel with fewer distinct values than this in a window is flat (or quantised away).
MIN_LEVELS = 8


def clipped_share(x: np.ndarray) -> float:
    """Share of the samples of ``x`` at its highest or lowest value (0..1).

    A healthy pulse spends a few samples near each extreme of a window; a channel clipped by
    the converter or the camera's 8 bits spends much of its time there.
    """
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return 1.0
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    if span <= 0.0:
        return 1.0
    margin = CLIP_MARGIN * span
    top = float(np.mean(x >= hi - margin))
    bottom = float(np.mean(x <= lo + margin))
    return max(top, bottom)


def is_usable(x: np.ndarray) -> bool:
    """``True`` when ``x`` is neither clipped nor flat (it may carry a pulse)."""
    x = np.asarray(x, dtype=float)
    if len(x) < MIN_LEVELS or len(np.unique(x)) < MIN_LEVELS:
        return False
    return clipped_share(x) <= CLIP_SHARE_MAX


def pick_channel(channels: Mapping[str, np.ndarray], prefer: Sequence[str]) -> str:
    """The name of the channel to analyse over a window of samples.

    ``prefer`` orders the names (e.g. ``("ir", "red")`` for the MAX30102, ``("R", "G", "B")``
    for a camera); the first usable one wins; when none is usable, the least clipped one.
    """
    names = [n for n in prefer if n in channels] + [n for n in channels if n not in prefer]
    if not names:
        raise ValueError("no channels to pick from")
    for name in names:
        if is_usable(channels[name]):
            return name
    return min(names, key=lambda n: clipped_share(channels[n]))
