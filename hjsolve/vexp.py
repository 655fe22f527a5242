"""An exp and a log that LLVM can vectorise inside Numba loops.

Numba lowers ``np.exp`` to a libm call per element unless llvmlite is built against Intel's
SVML, which the PyPI wheels are not; one such call then keeps the whole particle loop scalar.
`exp` here is branch-free arithmetic: x = k ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2),
e^r by its degree-13 Taylor polynomial (truncation < 4e-18), and 2^k put into the exponent
bits. k is rounded by adding 1.5·2^52, whose sum holds k in its low bits: no float-to-integer
conversion, which AVX2 has no vector instruction for. Relative error ≤ 2.3e-16 (tested against
numpy) on [-708, 709]; the argument is clamped to that range, so the result is never inf or a
denormal. `exp_estrin` evaluates the same polynomial by Estrin's scheme: a shorter dependency
chain, 2 ulp. `log` is fdlibm's (x = 2^k m, m ∈ [√½, √2), log m from s = (m-1)/(m+1) and a
degree-14 minimax polynomial in s), with k read from the exponent bits.
"""
import math

from numba import njit, types
from numba.extending import intrinsic

LOG2_E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
TAYLOR = tuple(1.0 / math.factorial(k) for k in range(14))
#: 1.5·2^52: for |v| < 2^51, v + ROUNDER rounds v to the nearest integer k (ties to even, as
#: rint) and the low bits of its IEEE-754 pattern are k.
ROUNDER = 6755399441055744.0
#: 2^52: the double with bit pattern TWO52_BITS | e (0 ≤ e < 2^52) is 2^52 + e.
TWO52 = 4503599627370496.0
TWO52_BITS = 0x4330000000000000
ONE_BITS = 0x3FF0000000000000
MANTISSA = 0xFFFFFFFFFFFFF
SQRT2 = 1.4142135623730951
#: fdlibm e_log.c: log(1 + f) = f - f²/2 + s (f²/2 + R(s²)), R by these (Lg1..Lg7).
LOG_POLY = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
            2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
            1.479819860511658591e-01)


def _bitcast(source, target):
    """An intrinsic giving the ``target`` value with the IEEE-754 bit pattern of a ``source`` one."""

    @intrinsic
    def cast(typingctx, value):
        if value != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_int_bits_as_float = _bitcast(types.int64, types.float64)
_float_bits_as_int = _bitcast(types.float64, types.int64)


@njit(cache=True, inline="always")
def _reduce(x):
    """(shifted, r) with x = k ln2 + r, |r| ≤ ln2/2, after clamping x to [-708, 709]; shifted =
    x log2(e) + `ROUNDER` holds k in its low bits (`_times_two_to_k`)."""
    x = min(max(x, -708.0), 709.0)
    shifted = x * LOG2_E + ROUNDER
    k = shifted - ROUNDER
    return shifted, (x - k * LN2_HI) - k * LN2_LO


@njit(cache=True, inline="always")
def _times_two_to_k(p, shifted):
    """p·2^k for the k held by ``shifted``: (bits of shifted) = bits of ROUNDER + k, and
    ROUNDER's low 12 bits are 0, so shifting by 52 leaves (k + 1023) << 52, the exponent bits
    of 2^k."""
    return p * _int_bits_as_float((_float_bits_as_int(shifted) + 1023) << 52)


@njit(cache=True, inline="always")
def exp(x):
    shifted, r = _reduce(x)
    p = TAYLOR[13]
    for j in range(12, -1, -1):
        p = p * r + TAYLOR[j]
    return _times_two_to_k(p, shifted)


@njit(cache=True, inline="always")
def exp_estrin(x):
    """`exp` with the polynomial by Estrin's scheme: the same reduction and coefficients, a
    dependency chain of depth 6 instead of 26, so that loops of independent exponentials run
    about 1.5× faster (the grid's fitted rates). Relative error ≤ 4.5e-16 (2 ulp)."""
    shifted, r = _reduce(x)
    c = TAYLOR
    r2 = r * r
    r4 = r2 * r2
    q0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2
    q1 = (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2
    q2 = (c[8] + c[9] * r) + (c[10] + c[11] * r) * r2
    q3 = c[12] + c[13] * r
    p = (q0 + q1 * r4) + (q2 + q3 * r4) * (r4 * r4)
    return _times_two_to_k(p, shifted)


@njit(cache=True, inline="always")
def log(x):
    """Natural log of a positive normal double (no checks: 0, denormals, inf and NaN give
    garbage). Relative error ≤ 1 ulp-ish (tested against numpy at 2.3e-16)."""
    bits = _float_bits_as_int(x)
    m = _int_bits_as_float((bits & MANTISSA) | ONE_BITS)  # x / 2^k in [1, 2)
    k = _int_bits_as_float((bits >> 52) | TWO52_BITS) - (TWO52 + 1023.0)
    high = m > SQRT2
    m = 0.5 * m if high else m
    k = k + 1.0 if high else k
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    c = LOG_POLY
    r = w * (c[1] + w * (c[3] + w * c[5])) + z * (c[0] + w * (c[2] + w * (c[4] + w * c[6])))
    half_f2 = 0.5 * f * f
    return k * LN2_HI - ((half_f2 - (s * (half_f2 + r) + k * LN2_LO)) - f)
