"""Counter-based dropout hash, bit-exact with :func:`revml.reference.dropout_keep`.

All arithmetic is on ``tl.uint32`` so multiplications wrap modulo 2**32 and right shifts
are logical, which is what the reference emulates on int32 tensors. The constants must
equal ``revml.reference``'s; ``tests/test_kernels.py`` checks the bits against it.
"""

import triton
import triton.language as tl

# The multipliers of Chris Wellons' "lowbias32" mixer (public domain) and the salts, as in
# revml.reference. Used as uint32 scalars built in-kernel (_u32), never as bare literals,
# which Triton types by value (int32 below 2**31, uint32 above).
_MIX_M1: tl.constexpr = tl.constexpr(0x7FEB352D)
_MIX_M2: tl.constexpr = tl.constexpr(0x846CA68B)
_SEED_SALT: tl.constexpr = tl.constexpr(0x9E3779B9)
_COLUMN_SALT: tl.constexpr = tl.constexpr(0x632BE5AB)


@triton.jit
def _u32(value: tl.constexpr):
    return tl.full((), value, tl.uint32)


@triton.jit
def mix32(h):
    """lowbias32 on a ``tl.uint32`` tensor."""
    h = h ^ (h >> 16)
    h = h * _u32(_MIX_M1)
    h = h ^ (h >> 15)
    h = h * _u32(_MIX_M2)
    return h ^ (h >> 16)


@triton.jit
def row_keys(rows, seed_lo, seed_hi, step):
    """Per-sample keys (uint32) of one step, as ``reference.row_keys``.

    ``rows``: int64 global sample indices; ``seed_lo``, ``seed_hi``, ``step``: integer
    scalars (the seed's low and high 32-bit words, the step). Only the low 32 bits of each
    count, as in the reference: the casts to uint32 truncate (int64) or reinterpret
    (int32) the bits.
    """
    key = mix32(seed_lo.to(tl.uint32) ^ _u32(_SEED_SALT))
    key = mix32(key ^ seed_hi.to(tl.uint32))
    key = mix32(key ^ rows.to(tl.uint32))
    return mix32(key ^ step.to(tl.uint32))


@triton.jit
def column_keys(cols):
    """Per-feature keys (uint32) from int32 feature indices, as ``reference.column_keys``."""
    return mix32(cols.to(tl.uint32, bitcast=True) ^ _u32(_COLUMN_SALT))


@triton.jit
def dropout_keep(row_key, col_key, threshold):
    """Keep-mask (bool, rows x cols) from (R,) row keys and (C,) column keys.

    An entry is kept iff the top 24 bits of its hash are ``>= threshold``
    (``reference.dropout_threshold``, an int32 scalar in [0, 2**24]).
    """
    bits = mix32(row_key[:, None] ^ col_key[None, :])
    return (bits >> 8) >= threshold.to(tl.uint32)
