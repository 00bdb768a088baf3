"""bfloat16 as 16-bit patterns in numpy ``uint16`` arrays.

Rounding from float32 is IEEE round-to-nearest-even on the 16 dropped bits; NaN becomes the quiet
NaN 0x7FC0 (sign kept), infinities and signed zeros are preserved, subnormals are kept (no flush).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U16 = npt.NDArray[np.uint16]
F32 = npt.NDArray[np.float32]


def from_bf16(bits: npt.ArrayLike) -> F32:
    """Exact widening of bf16 bit patterns to float32."""
    u = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)
    return u.view(np.float32)


def to_bf16(x: npt.ArrayLike) -> U16:
    """Round float32 values to bf16 bit patterns (round to nearest, ties to even)."""
    f = np.asarray(x, dtype=np.float32)
    u = f.view(np.uint32)
    lsb = (u >> np.uint32(16)) & np.uint32(1)
    rounded = (u + np.uint32(0x7FFF) + lsb) >> np.uint32(16)
    nan = np.isnan(f)
    quiet = (u >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def random_bf16(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> U16:
    """Finite random bf16 values ~ N(0, scale), for tests and demos."""
    return to_bf16(rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))
