"""The kernels of a compiled module: what XLA launches, what each fuses, what it reads, writes and computes.

A kernel is an instruction that launches work: a fusion, a custom-call, or an unfused compute op (``dot``, ``sort``,
``all-reduce``, ``copy``...). Not kernels: free ops that only name or reinterpret buffers (``parameter``,
``constant``, ``tuple``, ``get-tuple-element``, ``bitcast``, ...), control flow (``while``, ``conditional``,
``call``), whose bodies are walked instead, and the ``-done``/``-update`` halves of async pairs (the ``-start``
counts, or when it wraps a computation, as ``async-start(...), calls=%c`` does for jax 0.12's asynchronous fusions
on the GPU, the kernel inside it). The rule is the same for CPU and GPU: XLA:CPU runs each kernel as a thunk, XLA:GPU as one or more device
kernels, and both profilers attribute time per HLO instruction (see NOTES), which is what this census lists.

Computations that are applied inside an op (reducers, comparators, scatter combiners) are part of that op, not
kernels of their own. Loop bodies are walked with their trip count: the one ``backend_config`` gives
(``known_trip_count``), else the one found by running the loop's scalar control
(:mod:`xlainspect.analysis.trip_count`, for TF's ``map_fn`` and ``while_loop``); when neither tells, once, and the
kernel says so.

Bytes are counted as a kernel touches them, not as big as its operands are: a loop body's kernel that reads one
step's slice of a stacked ``(T, ...)`` array (``dynamic-slice``) reads that slice, and one that writes a step's
result into it in place (``dynamic-update-slice`` of a fusion parameter, which XLA aliases to the output) writes
the update. Counted by operand size, a scan over 256 steps would read every stacked array 256 times over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xlainspect.analysis.fingerprint import Fingerprints
from xlainspect.analysis.flops import instruction_flops
from xlainspect.analysis.stats import fusion_kind_label
from xlainspect.analysis.trip_count import TripCounter
from xlainspect.hlo import Computation, HloModule, Instruction
from xlainspect.hlo.gcpause import paused_gc

FREE_OPCODES: frozenset[str] = frozenset({
    "parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all", "add-dependency", "opt-barrier",
    "domain", "partition-id", "replica-id", "get-dimension-size", "iota",
})
CONTROL_OPCODES: frozenset[str] = frozenset({"while", "conditional", "call"})
_WALKED_ROLES = frozenset({"condition", "body", "true_computation", "false_computation", "branch_computations",
                           "async_wrapped"})


@dataclass(frozen=True)
class SourceOp:
    """A framework op a kernel came from: JAX's op path or TF's op name and type, and the source line."""

    op_name: str
    op_type: str = ""
    location: str = ""

    def __str__(self) -> str:
        text = self.op_name or self.op_type or "?"
        if self.op_type and self.op_name and self.op_type not in self.op_name:
            text += f" ({self.op_type})"
        return text + (f" at {self.location}" if self.location else "")


_NO_SOURCE = SourceOp("")  # metadata that names no framework op


@dataclass(frozen=True)
class Kernel:
    """One kernel of a module.

    Attributes:
        name: the launching instruction's name.
        computation: the computation it sits in (the entry, or a loop body or branch).
        opcode: ``fusion``, ``custom-call``, or the unfused op's opcode.
        kind: for fusions the kind it counts under (``kLoop``, ``__ynn_fusion``...); for custom-calls the target;
            for others the opcode.
        fused_ops: opcodes of the instructions it computes (for a fusion, its body without parameters; else itself).
        root_op: the opcode that produces its result (a fusion body's root).
        bytes_read: bytes of its operands, from their shapes.
        bytes_written: bytes of its result, from its shape.
        flops: an estimate for the dots and convolutions it holds (2 x multiply-adds); 0 for other ops.
        sources: the framework ops it came from (its own metadata and its fused instructions'), deduplicated.
        trips: how many times it runs per execution of the module (loop trip counts multiplied); 1 outside loops.
        trips_known: False when an enclosing loop's trip count is unknown (then ``trips`` counts that loop once).
        fingerprint: what the kernel computes, as a hash that ignores names and layouts
            (:mod:`xlainspect.analysis.fingerprint`); equal fingerprints mean the same values from the same inputs.
        layout_fingerprint: the same with every layout included: equal math but different layouts means the same
            values computed with different memory layouts.
        producers: names of the kernels whose results it reads (through tuples, bitcasts and the like), in operand
            order; kernels outside its computation (a loop's inputs) are not followed.
        position: its place in the census order (entry order, loop bodies walked where they run).
    """

    name: str
    computation: str
    opcode: str
    kind: str
    fused_ops: tuple[tuple[str, int], ...]
    root_op: str
    bytes_read: int
    bytes_written: int
    flops: int
    sources: tuple[SourceOp, ...]
    trips: int = 1
    trips_known: bool = True
    fingerprint: str = field(default="", compare=False)
    layout_fingerprint: str = field(default="", compare=False)
    producers: tuple[str, ...] = field(default=(), compare=False)
    position: int = field(default=0, compare=False)

    @property
    def kernel_class(self) -> str:
        """What kind of kernel this is, for pairing: only kernels of one class can be similar.

        Loop, input and output fusions are one class (XLA versions move work between them); a ``kCustom`` fusion
        pairs only with one of the same backend kind (``__triton_gemm``...), a custom-call only with the same
        target, an unfused op only with the same opcode.
        """
        if self.opcode == "fusion":
            return "fusion" if self.kind in ("kLoop", "kInput", "kOutput") else f"fusion:{self.kind}"
        if self.opcode == "custom-call":
            return f"custom-call:{self.kind}"
        return f"op:{self.opcode}"

    @property
    def fused_op_counts(self) -> Counter[str]:
        return Counter(dict(self.fused_ops))


@dataclass(frozen=True)
class Census:
    """The kernels of a module and their totals (each kernel weighted by its trip count)."""

    module: str
    kernels: tuple[Kernel, ...]

    @property
    def kernel_count(self) -> int:
        return len(self.kernels)

    @property
    def launches(self) -> int:
        """Kernel executions per module execution, loops unrolled by their trip counts."""
        return sum(kernel.trips for kernel in self.kernels)

    @property
    def fusions_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(k.kind for k in self.kernels if k.opcode == "fusion").items()))

    @property
    def fusion_count(self) -> int:
        return sum(1 for kernel in self.kernels if kernel.opcode == "fusion")

    @property
    def custom_calls(self) -> dict[str, int]:
        return dict(sorted(Counter(k.kind for k in self.kernels if k.opcode == "custom-call").items()))

    @property
    def unfused_ops(self) -> dict[str, int]:
        return dict(sorted(Counter(k.opcode for k in self.kernels
                                   if k.opcode not in ("fusion", "custom-call")).items()))

    @property
    def bytes_read(self) -> int:
        return sum(k.bytes_read * k.trips for k in self.kernels)

    @property
    def bytes_written(self) -> int:
        return sum(k.bytes_written * k.trips for k in self.kernels)

    @property
    def flops(self) -> int:
        return sum(k.flops * k.trips for k in self.kernels)

    @property
    def unknown_loops(self) -> int:
        """Kernels inside a loop whose trip count neither XLA nor the census could tell: each was counted once, so
        launches, bytes and FLOPs are lower bounds when this is not 0."""
        return sum(1 for k in self.kernels if not k.trips_known)

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "kernels": self.kernel_count,
            "launches": self.launches,
            "kernels_in_loops_of_unknown_trip_count": self.unknown_loops,
            "fusions": {"total": self.fusion_count, "by_kind": self.fusions_by_kind},
            "custom_calls": self.custom_calls,
            "unfused_ops": self.unfused_ops,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "flops": self.flops,
        }


def census(module: HloModule) -> Census:
    """Lists the kernels of a module, walking into loop bodies and branches from the entry computation."""
    kernels: list[Kernel] = []
    fingerprints = Fingerprints(module)
    with paused_gc():
        _walk(module, module.entry, 1, True, kernels, fingerprints, set(), {}, TripCounter(module))
    return Census(module.name, tuple(kernels))


def _trip_count(instruction: Instruction) -> int | None:
    config = instruction.backend_config
    if isinstance(config, dict):
        count = config.get("known_trip_count")
        if isinstance(count, dict) and str(count.get("n", "")).isdigit():
            return int(count["n"])
    return None


def _walk(module: HloModule, computation: Computation, trips: int, known: bool, kernels: list[Kernel],
          fingerprints: Fingerprints, active: set[str], source_ops: dict[int, SourceOp],
          counter: TripCounter) -> None:
    if computation.name in active:  # a malformed module could call itself; XLA forbids recursion
        return
    active.add(computation.name)
    # Which kernels each value of this computation comes from, looking through free ops and control flow.
    producers: dict[str, tuple[str, ...]] = {}
    for instruction in computation.instructions:
        opcode = instruction.opcode
        inputs = tuple(dict.fromkeys(name for operand in instruction.operands
                                     for name in producers.get(operand, ())))
        producers[instruction.name] = inputs  # until it turns out to be a kernel: free ops and control pass through
        wraps = opcode == "async-start" or (opcode.endswith("-start") and _is_async_shorthand(instruction))
        if opcode in CONTROL_OPCODES or wraps:
            body_trips, body_known = trips, known
            if opcode == "while":
                count = _trip_count(instruction)
                if count is None:
                    count = counter.count(instruction)
                body_trips, body_known = (trips * count, known) if count is not None else (trips, False)
            first = len(kernels)
            for called in instruction.called_computations:
                if called.role in _WALKED_ROLES or opcode in ("call", "async-start"):
                    _walk(module, module.computation(called.name), body_trips, body_known, kernels, fingerprints,
                          active, source_ops, counter)
            if wraps and len(kernels) > first:  # the -done's value comes from the kernel the pair wraps
                producers[instruction.name] = tuple(kernel.name for kernel in kernels[first:])
            continue
        if opcode in FREE_OPCODES or opcode.endswith("-done") or opcode.endswith("-update"):
            continue
        producers[instruction.name] = (instruction.name,)
        kernels.append(_kernel(module, instruction, trips, known, fingerprints, inputs, len(kernels), source_ops))
    active.discard(computation.name)


def _bytes(module: HloModule, computation: Computation, instruction: Instruction) -> tuple[int, int]:
    """Bytes a kernel reads and writes: its operands and result, except the parts of them it only slices or updates
    in place (see the module docstring)."""
    sizes = [computation.by_name[operand].shape.byte_size or 0 for operand in instruction.operands]
    written = instruction.shape.byte_size or 0
    if instruction.opcode == "dynamic-slice":
        return written + sum(sizes[1:]), written
    if instruction.opcode == "dynamic-update-slice":
        return sum(sizes[1:]), sizes[1] if len(sizes) > 1 else written
    if instruction.opcode != "fusion" or not instruction.called_computations:
        return sum(sizes), written
    return _fusion_bytes(module.computation(instruction.called_computations[0].name), sizes)


def _fusion_bytes(body: Computation, sizes: list[int]) -> tuple[int, int]:
    """A fusion's bytes. XLA writes a fusion's output into its operand's buffer when the output is a
    ``dynamic-update-slice`` (or a chain of them) of a fusion parameter that nothing else in the fusion reads whole;
    then only the updates are written, and only the slices the fusion takes of that parameter are read."""
    users: dict[str, list[Instruction]] = {}
    for inner in body.instructions:
        for operand in dict.fromkeys(inner.operands):
            users.setdefault(operand, []).append(inner)

    def uses(name: str) -> list[tuple[Instruction, str]]:
        """(user, the operand name it reads) for every use of ``name``, looking through bitcasts."""
        found = []
        for user in users.get(name, ()):
            found.extend(uses(user.name) if user.opcode == "bitcast" else [(user, name)])
        return found

    def origin(name: str) -> Instruction:
        instruction = body.by_name[name]
        while instruction.opcode == "bitcast":
            instruction = body.by_name[instruction.operands[0]]
        return instruction

    root = origin(body.root.name)
    outputs = [origin(name) for name in root.operands] if root.opcode == "tuple" else [root]
    # Each output that is a chain of updates on a parameter: the updates, by the parameter they update.
    chains: dict[str, list[Instruction]] = {}
    for output in outputs:
        chain, node = [], output
        while node.opcode == "dynamic-update-slice":
            chain.append(node)
            node = origin(node.operands[0])
        if chain and node.opcode == "parameter" and node.name not in chains and all(
                len(uses(link.name)) == 1 for link in chain[1:]):  # an inner update read only by the next one
            chains[node.name] = chain
    read = 0
    in_place: set[str] = set()
    for parameter in body.instructions:
        if parameter.opcode != "parameter" or parameter.parameter_number is None:
            continue
        number = parameter.parameter_number
        full = sizes[number] if number < len(sizes) else 0
        chain_start = chains[parameter.name][-1] if parameter.name in chains else None
        sliced, whole = 0, False
        found = uses(parameter.name)
        for user, name in found:
            if user.opcode == "dynamic-slice" and user.operands[0] == name:
                sliced += user.shape.byte_size or 0
            elif user is not chain_start or user.operands[0] != name:
                whole = True  # read as a whole (or updated out of place): every byte of it
        if chain_start is not None and not whole:
            in_place.add(parameter.name)
        read += full if whole or not found else min(full, sliced)
    written = 0
    for output in outputs:
        base = next((name for name, chain in chains.items() if chain[0] is output), None)
        if base is not None and base in in_place:
            written += sum(body.by_name[update.operands[1]].shape.byte_size or 0 for update in chains[base])
        else:
            written += output.shape.byte_size or 0
    return read, written


def _is_async_shorthand(instruction: Instruction) -> bool:
    return any(called.role == "async_wrapped" for called in instruction.called_computations)


def _kernel(module: HloModule, instruction: Instruction, trips: int, known: bool, fingerprints: Fingerprints,
            producers: tuple[str, ...], position: int, source_ops: dict[int, SourceOp]) -> Kernel:
    computation = module.computation(instruction.computation)
    if instruction.opcode == "fusion":
        body = [i for i in _fused_instructions(module, instruction) if i.opcode != "parameter"]
        kind = fusion_kind_label(instruction)
        root_op = module.computation(instruction.called_computations[0].name).root.opcode
    else:
        body = [instruction]
        kind = instruction.custom_call_target or "" if instruction.opcode == "custom-call" else instruction.opcode
        root_op = instruction.opcode
    bytes_read, bytes_written = _bytes(module, computation, instruction)
    flops = sum(_flops(module, i) for i in body)
    sources: dict[SourceOp, None] = {}
    for item in (instruction, *body):
        if "metadata" not in item.attributes:
            continue
        source = source_ops.get(id(item.metadata))  # metadata objects are shared by text, so are their SourceOps
        if source is None:
            metadata = item.metadata
            user = metadata.user_source  # a frame of the user's; else the op name alone says where it came from
            location = str(user) if user is not None else ""
            source = source_ops[id(metadata)] = (SourceOp(metadata.op_name, metadata.op_type, location)
                                                 if metadata.op_name or metadata.op_type else _NO_SOURCE)
        if source is not _NO_SOURCE:
            sources[source] = None
    math, layout = fingerprints.kernel(instruction)
    return Kernel(
        name=instruction.name,
        computation=instruction.computation,
        opcode=instruction.opcode,
        kind=kind,
        fused_ops=tuple(sorted(Counter(i.opcode for i in body).items())),
        root_op=root_op,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        flops=flops,
        sources=tuple(sources),
        trips=trips,
        trips_known=known,
        fingerprint=math,
        layout_fingerprint=layout,
        producers=producers,
        position=position,
    )


def _fused_instructions(module: HloModule, fusion: Instruction) -> list[Instruction]:
    """The instructions a fusion computes, nested fusions expanded."""
    result: list[Instruction] = []
    for called in fusion.called_computations:
        for instruction in module.computation(called.name).instructions:
            if instruction.opcode == "fusion":
                result.extend(_fused_instructions(module, instruction))
            else:
                result.append(instruction)
    return result


def kernel_cost(module: HloModule, instruction: Instruction) -> int:
    """FLOPs plus bytes read and written by one instruction, fused ops included, without a whole-module census.

    For ranking kernels in modules too big to census quickly (the census also resolves every source location).
    """
    computation = module.computation(instruction.computation)
    moved = instruction.shape.byte_size or 0
    for operand in instruction.operands:
        producer = computation.by_name.get(operand)
        moved += (producer.shape.byte_size or 0) if producer is not None else 0
    inside = _fused_instructions(module, instruction) if instruction.opcode == "fusion" else [instruction]
    return moved + sum(_flops(module, op) for op in inside)


def _flops(module: HloModule, instruction: Instruction) -> int:
    """2 x multiply-adds of a dot, convolution or library GEMM/convolution (:mod:`.flops`); 0 for other ops."""
    return instruction_flops(module.computation(instruction.computation), instruction, module)
