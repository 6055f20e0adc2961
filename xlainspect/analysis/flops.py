"""Floating-point work of a kernel's dots and convolutions, from shapes: 2 x multiply-adds.

The same step must cost the same FLOPs whichever backend compiled it. On CPU the work sits in ``dot`` and
``convolution`` instructions (fused or not); for a GPU, XLA also hands it to libraries as custom-calls: cuBLAS GEMMs
(``__cublas$gemm``, ``__cublas$lt$matmul``), whose dimension numbers sit in ``backend_config``, and cuDNN
convolutions (``__cudnn$convForward``, ``$convBackwardInput``, ``$convBackwardFilter``,
``$convBiasActivationForward``), whose ``window`` and ``dim_labels`` describe the *forward* convolution whatever the
direction. Only which operand or result plays the forward input I, filter F and output O changes with it.

A convolution's work is counted tap by tap, as XLA's own cost analysis does: per spatial dimension, the pairs of
output and filter positions that land on a real input element, not on padding or on the holes that base dilation
(``lhs_dilate``, how XLA writes a strided convolution's input gradient) inserts. FLOPs = 2 x output batch x output
features x filter input features x the product of those counts. Counting every tap instead made XLA:CPU's
input-gradient convolutions of the MNIST CNN cost 7 times what cuDNN's do for the same step. Anything else (or
shapes too odd to trust) counts 0: no estimate rather than a wrong one.
"""

from __future__ import annotations

import re

from xlainspect.hlo import Computation, Instruction, Shape

CUBLAS_GEMMS = frozenset({"__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8"})

_Where = tuple[str, int]  # ("operand", i) or ("result", 0)
_FORWARD: tuple[_Where, _Where, _Where] = (("operand", 0), ("operand", 1), ("result", 0))

# cuDNN convolution target -> where the forward convolution's input I, filter F and output O are.
CUDNN_CONVOLUTIONS: dict[str, tuple[_Where, _Where, _Where]] = {
    "__cudnn$convForward": _FORWARD,
    "__cudnn$convBiasActivationForward": _FORWARD,
    "__cudnn$convForwardGraph": _FORWARD,
    "__cudnn$convBackwardInput": (("result", 0), ("operand", 1), ("operand", 0)),
    "__cudnn$convBackwardFilter": (("operand", 0), ("result", 0), ("operand", 1)),
}


def instruction_flops(computation: Computation, instruction: Instruction) -> int:
    """2 x multiply-adds of one dot, convolution, cuBLAS GEMM or cuDNN convolution; 0 for anything else."""
    opcode = instruction.opcode
    if opcode == "dot":
        return _dot_flops(computation, instruction, _dims(instruction.attributes.get("lhs_contracting_dims")))
    if opcode == "convolution":
        return _convolution_flops(computation, instruction, *_FORWARD)
    if opcode != "custom-call":
        return 0
    target = instruction.custom_call_target or ""
    if target in CUBLAS_GEMMS:
        config = instruction.backend_config
        gemm = config.get("gemm_backend_config") if isinstance(config, dict) else None
        numbers = gemm.get("dot_dimension_numbers") if isinstance(gemm, dict) else None
        contracting = numbers.get("lhs_contracting_dimensions") if isinstance(numbers, dict) else None
        if not isinstance(contracting, list):
            return 0
        return _dot_flops(computation, instruction, tuple(str(d) for d in contracting))
    if target in CUDNN_CONVOLUTIONS:
        return _convolution_flops(computation, instruction, *CUDNN_CONVOLUTIONS[target])
    return 0


def _dims(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").strip("{}").split(",") if part.strip())


def _result(instruction: Instruction) -> Shape:
    """The array a library call produces: the first element of its (result, scratch) tuple."""
    shape = instruction.shape
    return shape.tuple_shapes[0] if shape.is_tuple and shape.tuple_shapes else shape


def _shape(computation: Computation, instruction: Instruction, where: tuple[str, int]) -> Shape | None:
    kind, index = where
    if kind == "result":
        return _result(instruction)
    if index >= len(instruction.operands):
        return None
    producer = computation.by_name.get(instruction.operands[index])
    return None if producer is None else producer.shape


def _dot_flops(computation: Computation, instruction: Instruction, contracting: tuple[str, ...]) -> int:
    output = _result(instruction).element_count
    lhs = _shape(computation, instruction, ("operand", 0))
    if output is None or lhs is None or len(instruction.operands) < 2:
        return 0
    size = 1
    for text in contracting:
        if not text.isdigit() or int(text) >= len(lhs.dims):
            return 0  # dimension numbers XLA's verifier would reject
        size *= lhs.dims[int(text)] or 0
    return 2 * output * size


def _convolution_flops(computation: Computation, instruction: Instruction, input_at: _Where, filter_at: _Where,
                       output_at: _Where) -> int:
    shapes = [_shape(computation, instruction, where) for where in (input_at, filter_at, output_at)]
    parts = re.fullmatch(r"(\w+)_(\w+)->(\w+)", instruction.attributes.get("dim_labels", ""))
    if parts is None or any(shape is None or None in shape.dims for shape in shapes):
        return 0
    (input_shape, kernel, output), labels = shapes, parts.groups()
    if any(len(label) != shape.rank for label, shape in zip(labels, (input_shape, kernel, output))):
        return 0
    input_labels, kernel_labels, output_labels = labels
    if not {"b", "f"} <= set(input_labels) or not {"i", "o"} <= set(kernel_labels):
        return 0
    window = _window(instruction.attributes.get("window", ""))
    taps = 1
    for d, label in enumerate(sorted(ch for ch in kernel_labels if ch.isdigit())):
        if label not in input_labels or label not in output_labels:
            return 0
        taps *= _valid_taps(input_shape.dims[input_labels.index(label)], output.dims[output_labels.index(label)],
                            kernel.dims[kernel_labels.index(label)], window, d)
    work = output.dims[output_labels.index("b")] * output.dims[output_labels.index("f")]
    return 2 * work * kernel.dims[kernel_labels.index("i")] * taps


def _window(text: str) -> dict[str, list[str]]:
    """``size=3x3 stride=2x2 pad=1_1x0_2 lhs_dilate=2x2`` as {"size": ["3", "3"], "pad": ["1_1", "0_2"], ...}."""
    return {key: value.split("x") for key, value in re.findall(r"(\w+)=([\w\-]+)", text)}


def _valid_taps(input_size: int, output_size: int, kernel_size: int, window: dict[str, list[str]], d: int) -> int:
    """Pairs (output position, filter position) along one spatial dimension that read a real input element."""
    def number(key: str, default: int) -> int:
        values = window.get(key)
        return int(values[d]) if values and d < len(values) and values[d].lstrip("-").isdigit() else default

    stride, base, dilation = number("stride", 1), number("lhs_dilate", 1), number("rhs_dilate", 1)
    pads = window.get("pad")
    low = int(pads[d].split("_")[0]) if pads and d < len(pads) and "_" in pads[d] else 0
    last = (input_size - 1) * base  # the last real element of the base-dilated input
    count = 0
    for out in range(output_size):
        start = out * stride - low
        for k in range(kernel_size):
            position = start + k * dilation
            if 0 <= position <= last and position % base == 0:
                count += 1
    return count
