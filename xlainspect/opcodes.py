"""What xlainspect knows about HLO opcodes, by their text spelling.

The parser accepts any opcode-shaped word, so a newer XLA's opcodes still parse; these tables only drive behaviour
that depends on the opcode: XLA's async shorthand, and result shapes that the text may leave out.
"""

from __future__ import annotations

# Opcodes of jaxlib 0.10.2's XLA (``xla_client.hlo.HloOpcode``), plus those newer XLA adds.
KNOWN_OPCODES: frozenset[str] = frozenset("""
abs acos acosh add add-dependency after-all all-gather all-gather-done all-gather-start all-reduce all-reduce-done
all-reduce-start all-to-all and asin asinh async-done async-start async-update atan atan2 atanh batch-norm-grad
batch-norm-inference batch-norm-training bitcast bitcast-convert broadcast call cbrt ceil cholesky clamp
count-leading-zeros collective-broadcast collective-permute collective-permute-done collective-permute-start
collective-reduce compare complex concatenate conditional constant convert convolution copy copy-done copy-start
cosine cosh custom-call divide domain dot dynamic-reshape dynamic-slice dynamic-update-slice erf exponential
exponential-minus-one fft floor fusion gather get-dimension-size get-tuple-element imag infeed iota is-finite log
log-plus-one logistic map maximum minimum mulhi multiply negate not opt-barrier or outfeed pad parameter partition-id
popcnt power ragged-all-to-all ragged-dot real recv recv-done reduce reduce-precision reduce-scatter reduce-window
remainder replica-id reshape reverse rng rng-bit-generator rng-get-and-update-state round-nearest-afz
round-nearest-even rsqrt scaled-dot scan scatter select select-and-scatter send send-done set-dimension-size
shift-left shift-right-arithmetic shift-right-logical shuffle sign sine sinh slice sort sqrt stochastic-convert
subtract tan tanh topk transpose triangular-solve tuple while xor
""".split())

_ASYNC_SUFFIXES = ("-start", "-update", "-done")

# Elementwise opcodes whose result has their first operand's shape, for instructions written without a shape.
SAME_SHAPE_AS_OPERAND: frozenset[str] = frozenset("""
abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp copy cosine cosh divide erf exponential
exponential-minus-one floor imag is-finite log log-plus-one logistic maximum minimum mulhi multiply negate not or
popcnt power real remainder round-nearest-afz round-nearest-even rsqrt select shift-left shift-right-arithmetic
shift-right-logical sign sine sinh sqrt subtract tan tanh xor reduce-precision count-leading-zeros
""".split())


def async_wrapped_opcode(opcode: str) -> str | None:
    """The opcode an ``X-start``/``X-update``/``X-done`` shorthand wraps, or None if ``opcode`` is not one.

    XLA writes an async op whose wrapped computation is a single instruction as ``custom-call-start(...)`` instead
    of ``async-start(...), calls=...``; opcodes that are themselves async (``all-reduce-start``, ``copy-start``...)
    are not shorthand.
    """
    if opcode in KNOWN_OPCODES:
        return None
    for suffix in _ASYNC_SUFFIXES:
        if opcode.endswith(suffix):
            wrapped = opcode[: -len(suffix)]
            return wrapped if wrapped in KNOWN_OPCODES else None
    return None
