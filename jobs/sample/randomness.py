"""Counter-based randomness: a value depends only on (seed, content type, item number, stream).

No generator state is carried from one item to the next, so any batch of items can be produced
without the ones before it, and the rows are the same whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic, vectorised)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class Keys:
    """Random streams for items of one content type, addressed by item number.

    Why: every value of an item is drawn from its own numbered stream, so adding a value to one
    template never shifts the values of another.
    """

    seed: int
    code: int
    index: np.ndarray  # item numbers (0-based, int64)

    def bits(self, stream: int) -> np.ndarray:
        """64 random bits per item from `stream`."""
        salt_in = ((self.seed & 0xFFFFFFFF) << 24) | (self.code << 16) | (stream & 0xFFFF)
        salt = _splitmix(np.array([salt_in], dtype=np.uint64))
        return _splitmix(self.index.astype(np.uint64) ^ salt)

    def uniform(self, stream: int) -> np.ndarray:
        """A float in [0, 1) per item from `stream`."""
        return (self.bits(stream) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def chance(self, stream: int, p: float) -> np.ndarray:
        """True for a share `p` of the items."""
        return self.uniform(stream) < p

    def normal(self, stream: int) -> np.ndarray:
        """A standard normal value per item (Box–Muller over `stream` and `stream + 1`)."""
        u1 = np.maximum(self.uniform(stream), 2.0**-53)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * self.uniform(stream + 1))
