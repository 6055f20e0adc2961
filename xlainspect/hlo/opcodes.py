"""What xlainspect knows about HLO opcodes, by their text spelling.

The parser accepts any opcode-shaped word, so a newer XLA's opcodes still parse; these tables only drive behaviour
that depends on the opcode: XLA's async shorthand, result shapes that the text may leave out, and the computations
an opcode must call.
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

# Elementwise opcodes, for instructions written without a result shape (see xlainspect.hlo.infer_shape).
ELEMENTWISE_UNARY: frozenset[str] = frozenset("""
abs acos acosh asin asinh atan atanh cbrt ceil cosine cosh count-leading-zeros erf exponential
exponential-minus-one floor imag is-finite log log-plus-one logistic negate not popcnt real round-nearest-afz
round-nearest-even rsqrt sign sine sinh sqrt tan tanh
""".split())
ELEMENTWISE_BINARY: frozenset[str] = frozenset("""
add and atan2 compare complex divide maximum minimum mulhi multiply or power remainder shift-left
shift-right-arithmetic shift-right-logical subtract xor
""".split())

# Opcodes whose result shape XLA's parser wants written: it rejects them without one ("cannot infer shape for
# opcode"), checked opcode by opcode against jaxlib 0.10.2.
XLA_REQUIRES_SHAPE: frozenset[str] = frozenset("""
all-gather all-gather-done all-gather-start all-reduce all-reduce-done all-reduce-start all-to-all async-done
async-start async-update bitcast bitcast-convert collective-broadcast collective-permute collective-permute-done
collective-permute-start constant convert copy-done copy-start custom-call dynamic-reshape dynamic-slice
dynamic-update-slice fusion infeed iota outfeed parameter ragged-all-to-all recv recv-done reduce-precision
reduce-scatter reshape rng rng-bit-generator rng-get-and-update-state send send-done slice stochastic-convert
""".split())

# The computations an opcode must name, by attribute, with what each is for. XLA's parser rejects the instruction
# without them ("attribute calls is expected but not seen"), checked against jaxlib 0.10.2. A conditional names
# either branch_computations or true_computation and false_computation; the parser checks that case itself.
REQUIRED_CALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "fusion": (("calls", "the fused computation"),),
    "call": (("to_apply", "the called computation"),),
    "while": (("condition", "the loop condition"), ("body", "the loop body")),
    "reduce": (("to_apply", "the reducer"),),
    "reduce-window": (("to_apply", "the reducer"),),
    "reduce-scatter": (("to_apply", "the reducer"),),
    "all-reduce": (("to_apply", "the reducer"),),
    "all-reduce-start": (("to_apply", "the reducer"),),
    "scatter": (("to_apply", "the update combiner"),),
    "select-and-scatter": (("select", "the selector"), ("scatter", "the combiner")),
    "sort": (("to_apply", "the comparator"),),
    "map": (("to_apply", "the mapped computation"),),
    "async-start": (("calls", "the wrapped computation"),),
}


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
