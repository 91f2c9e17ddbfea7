"""Product tables with a known structure, for tests and benchmarks of the kernels and layers.

Each is a signed 256x256 table indexed ``lut[a + 128, b + 128]`` (int32) whose error
against the exact product has a known form, so a test can predict what a kernel,
a low-rank factorization or a layer must return.  They are not designs of the
database (``axhw.library``); no hardware cost exists for them.
"""

from __future__ import annotations

import numpy as np

from axhw.exact import operand_values

__all__ = ["truncated_product", "truncated_partial_products", "operand_truncation", "DEIT_TINY_B8"]

#: The products of DeiT-tiny at batch 8 (224 px, 197 tokens, 3 heads): name -> (G, M, K, N).
DEIT_TINY_B8: dict[str, tuple[int, int, int, int]] = {
    "qkv": (1, 8 * 197, 192, 576),
    "proj": (1, 8 * 197, 192, 192),
    "fc1": (1, 8 * 197, 192, 768),
    "fc2": (1, 8 * 197, 768, 192),
    "q@k^T": (8 * 3, 197, 64, 197),
    "a@v": (8 * 3, 197, 197, 64),
}


def truncated_product(bits: int = 4) -> np.ndarray:
    """Sign-magnitude product with the low ``bits`` bits of ``|a·b|`` dropped.

    ``lut(a, b) = sign(a b) * ((|a b| >> bits) << bits)``: never above the exact
    magnitude, error below ``2**bits``.
    """
    values = operand_values(signed=True).astype(np.int64)
    exact = np.outer(values, values)
    return (np.sign(exact) * ((np.abs(exact) >> bits) << bits)).astype(np.int32)


def truncated_partial_products(columns: int) -> np.ndarray:
    """Sign-magnitude multiplier that drops the partial-product bits of weight below ``2**columns``.

    ``lut(a, b) = sign(a b) * sum_{i + j >= columns} a_i b_j 2**(i + j)`` over the bits
    of ``|a|`` and ``|b|``: the exact product plus an error of rank ``columns``.
    """
    values = operand_values(signed=True).astype(np.int64)
    mag = np.abs(values)
    out = np.zeros((256, 256), np.int64)
    for i in range(8):
        for j in range(8):
            if i + j >= columns:
                out += np.outer((mag >> i) & 1, (mag >> j) & 1) << (i + j)
    return (np.outer(np.sign(values), np.sign(values)) * out).astype(np.int32)


def operand_truncation(bits: int) -> np.ndarray:
    """Both operands' ``bits`` low magnitude bits dropped: ``lut = f(a) f(b)``, one rank-1 term."""
    values = operand_values(signed=True).astype(np.int64)
    f = np.sign(values) * ((np.abs(values) >> bits) << bits)
    return np.outer(f, f).astype(np.int32)
