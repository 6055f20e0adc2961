"""The pass timeline: the module after each XLA pass that changed it, and the pass where two timelines part.

With ``--xla_dump_hlo_pass_re=.*`` (``xlainspect dump --pass-dumps``) XLA writes the module as HLO text each time a
pass changed it; a pass that changed nothing leaves no file (``xla/hlo/pass/hlo_pass_pipeline.cc``). The names take
two shapes (``xla/service/dump.cc``), the same in the XLA that jaxlib 0.10.2 bundles and in tensorflow 2.21's:

- between passes: ``module_0000.jit_f.0021.HLO_passes_after_layout_assignment.after_fusion.before_fusion-wrapper.txt``
  (``<step>.<pipeline>.after_<pass>.before_<next pass>``). The pseudo-pass ``pipeline-start`` marks the module as a
  pipeline received it, ``pipeline-end`` the end of a pipeline.
- inside a pass: ``module_0000.jit_f.0023.copy-insertion.after_adding_copies_to_resolve_interference.txt``
  (``<step>.<pass>.<step name>``); only a few passes (copy-insertion) write these, and the name carries no pipeline.

The module name may hold dots (TF's end in ``.2``, ``.48``...), so names are read from the right: the step number is
the last all-digit field, and pipeline, pass and step names hold no dots (XLA's do not). XLA may prefix the whole name
with a timestamp (``--xla_dump_include_timestamp``); that prefix is allowed.

Step numbers count every dump XLA attempted, so a gap is a dump it could not write. TF's module names run to 170
characters, and a pass dump whose name would pass Linux's 255-byte limit fails (XLA logs ``Could not write XLA debug
data ... File name too long`` and goes on): TF's dpsgd_mnist timeline lacks step 27 that way. :func:`missing_steps`
lists such gaps.

What JAX's and TF's dumps differ in is not the naming but what is dumped: different XLA builds run slightly different
pass lists (JAX's adds ``async-collective`` and ``pre-spmd-partitioner`` pipelines and dumps the module entering
``HLO_passes_after_scheduling``; TF's last dump comes before scheduling). :func:`first_divergence` aligns the two
lists for that reason.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from xlainspect.analysis.stats import fusion_kind_label, module_stats, top_level_instructions
from xlainspect.errors import InputError
from xlainspect.hlo import HloModule, read_hlo
from xlainspect.hlo.dump_folder import dumped_modules, pick_module

FusionSignature = tuple[str, tuple[str, ...]]
"""One top-level fusion, without names: its kind label and the sorted opcodes of its body (parameters left out)."""

_PREFIX = r"^(?:\d+\.)?module_(?P<number>\d+)\.(?P<module>.+)\.(?P<index>\d{4,})\."
_BETWEEN_PASSES_RE = re.compile(_PREFIX + r"(?P<pipeline>[^.]+)\.after_(?P<pass_name>[^.]+)\.before_(?P<next>[^.]+)"
                                          r"\.txt$")
_DURING_PASS_RE = re.compile(_PREFIX + r"(?P<pass_name>[^.]+)\.(?P<step>[^.]+)\.txt$")
# A TF module counter of four digits (``a_inference_f_1__.1234``) would read as a step number in XLA's other files:
# ``...1234.sm_9.0a_gpu_after_optimizations.txt`` is the optimized module, not a dump inside pass ``sm_9``.
_NOT_A_STEP_RE = re.compile(r"optimizations|buffer-assignment|memory-usage|live-range")


@dataclass(frozen=True)
class PassDumpName:
    """What the name of one of XLA's pass dump files says.

    Attributes:
        module_number: XLA's unique id of the module (``module_0004`` gives 4).
        module: the module's name (``jit_f``; TF's hold dots).
        index: the step number, the order in which XLA wrote the dumps of this module.
        pipeline: the pass pipeline (``simplification``); empty for dumps written inside a pass, whose names carry
            none.
        pass_name: the pass after which the module was dumped (``fusion``, or the pseudo-pass ``pipeline-start``);
            for a dump written inside a pass, that pass.
        next_pass: the pass that runs next (``before_...``); empty for dumps written inside a pass.
        step: for a dump written inside a pass, where in the pass it was taken
            (``after_adding_copies_to_resolve_interference``); else empty.
    """

    module_number: int
    module: str
    index: int
    pipeline: str
    pass_name: str
    next_pass: str = ""
    step: str = ""


def parse_pass_dump_name(name: str) -> PassDumpName | None:
    """Reads a pass dump's file name; None for any other file (the module before or after optimizations, buffer
    assignments, LLVM IR...), so a raw XLA dump folder can be given as it is."""
    match = _BETWEEN_PASSES_RE.match(name)
    if match is not None:
        return PassDumpName(int(match["number"]), match["module"], int(match["index"]), match["pipeline"],
                            match["pass_name"], next_pass=match["next"])
    match = _DURING_PASS_RE.match(name)
    if match is not None and _NOT_A_STEP_RE.search(match["step"]) is None:
        return PassDumpName(int(match["number"]), match["module"], int(match["index"]), "", match["pass_name"],
                            step=match["step"])
    return None


@dataclass(frozen=True)
class PassStep:
    """The module after one pass that changed it.

    Attributes:
        index: the step number from the file name; steps sort by it.
        pipeline: the pipeline that ran the pass; empty for a dump written inside a pass.
        pass_name: the pass (or ``pipeline-start``).
        file: the dump file's path.
        instructions: instructions of all computations, fusion bodies included.
        fusions: top-level fusions, counted as :func:`~xlainspect.analysis.stats.module_stats` counts them.
        fusions_by_kind: top-level fusions per kind label (``kLoop``, ``__ynn_fusion``...).
        computations: number of computations.
        structure: the fusion structure, what two timelines are compared on: one
            ``(kind label, sorted fused opcodes)`` pair per top-level fusion, sorted. Names are left out because they
            are not comparable across frameworks or even across runs (``fusion.3``, ``add.17``, TF's op-derived
            names); parameters are left out so that it says what a kernel computes, not how its operands were cut.
        next_pass: the pass that runs next; empty for a dump written inside a pass.
        step: for a dump written inside a pass, where in the pass it was taken; else empty.
    """

    index: int
    pipeline: str
    pass_name: str
    file: str
    instructions: int
    fusions: int
    fusions_by_kind: dict[str, int]
    computations: int
    structure: tuple[FusionSignature, ...]
    next_pass: str = ""
    step: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What aligns steps of two timelines: pipeline, pass and step names."""
        return (self.pipeline, self.pass_name, self.step)

    @property
    def label(self) -> str:
        """``fusion (HLO_passes_after_layout_assignment)``, or ``copy-insertion, step after_adding_copies_...``."""
        if self.step:
            return f"{self.pass_name}, step {self.step}"
        return f"{self.pass_name} ({self.pipeline})" if self.pipeline else self.pass_name


def fusion_structure(module: HloModule) -> tuple[FusionSignature, ...]:
    """The sorted ``(kind label, sorted fused opcodes)`` of every top-level fusion: kernels without their names."""
    signatures = []
    for instruction in top_level_instructions(module):
        if instruction.opcode != "fusion":
            continue
        opcodes: list[str] = []
        for called in instruction.called_computations:
            if called.role == "calls" and called.name in module.by_name:
                opcodes.extend(i.opcode for i in module.by_name[called.name].instructions if i.opcode != "parameter")
        signatures.append((fusion_kind_label(instruction), tuple(sorted(opcodes))))
    return tuple(sorted(signatures))


def pass_timeline(folder: str | os.PathLike[str], module: str | None = None) -> tuple[PassStep, ...]:
    """Reads XLA's pass dumps of one module into steps, in the order XLA wrote them.

    Args:
        folder: a dump folder made with ``--pass-dumps`` (its ``passes/`` is read), or a folder of pass dump files
            (``passes/`` itself, or XLA's own ``--xla_dump_to`` folder). Files whose names are not pass dumps are
            skipped; subfolders are not searched.
        module: the module's name as the file names spell it, or its ``module_NNNN`` id; else, in a raw XLA dump
            folder, a ``--module`` selector (a position in compile order, or a regular expression on the name that
            matches one). None reads the folder's only module, or the main module of a raw XLA dump folder.

    Returns:
        One step per pass dump, sorted by step number.

    Raises:
        InputError: the folder is missing or a file, holds no pass dumps, or holds several modules' and ``module``
            does not pick one; or a pass dump holds more than one module.
        HloParseError: a pass dump is not valid HLO.
    """
    directory = _pass_directory(Path(folder))
    found: dict[tuple[int, str], list[tuple[PassDumpName, Path]]] = {}
    for path in directory.iterdir():
        name = parse_pass_dump_name(path.name)
        if name is not None and path.is_file():
            found.setdefault((name.module_number, name.module), []).append((name, path))
    if module is not None:
        exact = {key: files for key, files in found.items() if module in (key[1], f"module_{key[0]:04d}")}
        found = exact or _picked(directory, found, module)
        if not found:
            raise InputError(f"{directory}: no XLA pass dumps of module {module!r}; check the name against the "
                             "file names (module_NNNN.<module>.NNNN....txt)")
    elif len(found) > 1:
        found = _picked(directory, found, None) or found
    if not found:
        raise InputError(f"{directory}: no XLA pass dumps found; make the dump with --pass-dumps")
    if len(found) > 1:
        # A program compiled twice gives two modules of one name; their ids tell them apart.
        keys = sorted(found)
        listed = ", ".join(f"module_{number:04d} {name}" for number, name in keys[:3])
        listed += f" and {len(keys) - 3} more" if len(keys) > 3 else ""
        raise InputError(f"{directory}: pass dumps of {len(keys)} modules ({listed}); pick one with module= (its "
                         "name or module_NNNN), or give a folder holding one module's")
    (files,) = found.values()
    files.sort(key=lambda item: (item[0].index, item[1].name))
    return tuple(_read_step(name, path) for name, path in files)


def _picked(directory: Path, found: dict[tuple[int, str], list[tuple[PassDumpName, Path]]],
            selector: str | None) -> dict[tuple[int, str], list[tuple[PassDumpName, Path]]]:
    """The pass dumps of the module ``--module SELECTOR`` picks among those XLA dumped into ``directory`` (None: the
    main module), as :func:`~xlainspect.hlo.dump_folder.pick_module` picks; empty when the folder holds no module
    files to pick from (a ``passes/`` folder alone).

    Raises:
        InputError: the selector picks no module or several, or the picked module has no pass dumps.
    """
    modules = dumped_modules(directory)
    if not modules:
        return {}
    chosen = pick_module(modules, selector, str(directory))
    key = (chosen.number, chosen.name)
    if key not in found:
        raise InputError(f"{directory}: module_{chosen.number:04d} {chosen.name} has no pass dumps; dump with "
                         "--xla_dump_hlo_pass_re=.* or pick another with --module")
    return {key: found[key]}


def missing_steps(timeline: Sequence[PassStep]) -> tuple[int, ...]:
    """Step numbers between a timeline's first and last that have no file: dumps XLA failed to write (a name over
    255 bytes) or files removed since. A pass that changed the fusions may hide in such a gap."""
    present = {step.index for step in timeline}
    if not present:
        return ()
    return tuple(index for index in range(min(present), max(present)) if index not in present)


def _pass_directory(folder: Path) -> Path:
    if not folder.exists():
        raise InputError(f"{folder}: no such directory; give a dump folder made with --pass-dumps, or its passes/")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory; give a dump folder made with --pass-dumps, or its passes/")
    passes = folder / "passes"
    return passes if passes.is_dir() else folder


def _read_step(name: PassDumpName, path: Path) -> PassStep:
    modules = read_hlo(path)
    if len(modules) != 1:
        raise InputError(f"{path}: holds {len(modules)} modules; an XLA pass dump holds one")
    stats = module_stats(modules[0])
    return PassStep(
        index=name.index,
        pipeline=name.pipeline,
        pass_name=name.pass_name,
        file=str(path),
        instructions=stats.instructions,
        fusions=stats.fusions,
        fusions_by_kind=stats.fusions_by_kind,
        computations=stats.computations,
        structure=fusion_structure(modules[0]),
        next_pass=name.next_pass,
        step=name.step,
    )


@dataclass(frozen=True)
class Divergence:
    """The first pass after which two timelines' fusion structures differ.

    Attributes:
        pass_name: the pass.
        pipeline: its pipeline (empty for a dump written inside a pass).
        a: side a's step at that point: the pass's own step, or, when only side b ran (or dumped) the pass, side a's
            latest step before it; None when side a had no step yet.
        b: the same for side b.
        only_in: the name of the side whose dumps alone hold the pass (the other's XLA does not run it, or it changed
            nothing there); None when both sides' do.
        description: one line, e.g. ``after fusion (HLO_passes_after_layout_assignment): jax has 2 fusions (kLoop 2),
            tf has 3 (kLoop 2, kOutput 1)``.
        fusions_only_in_a: the fusion signatures side a has and side b lacks (a multiset difference).
        fusions_only_in_b: the reverse.
    """

    pass_name: str
    pipeline: str
    a: PassStep | None
    b: PassStep | None
    only_in: str | None
    description: str
    fusions_only_in_a: tuple[FusionSignature, ...] = ()
    fusions_only_in_b: tuple[FusionSignature, ...] = ()


def first_divergence(a: Sequence[PassStep], b: Sequence[PassStep],
                     names: tuple[str, str] = ("a", "b")) -> Divergence | None:
    """Finds the first pass after which two timelines' fusion structures differ.

    Alignment rule: the steps are matched by (pipeline, pass, step name) with a longest common subsequence
    (:class:`difflib.SequenceMatcher`, without its junk heuristic, since ``pipeline-start`` and ``algsimp`` repeat).
    The pipeline is part of the key because the same pass runs in several pipelines (``algsimp`` in
    ``simplification`` and ``post_scatter_expansion_simplification``). Both sides start with no fusions, as every
    module does before XLA's fusion passes. Then, in order:

    - aligned steps are compared one to one; the first pair whose ``structure`` differs is the divergence;
    - steps between aligned ones, on one side only (a pass one XLA runs and the other does not, or one that changed
      the module on one side only: XLA dumps only changes), are compared at the end of their run. If the
      sides are equal there, nothing diverged, even if they differed in between. Otherwise the divergence is the
      one-sided step after which the sides became different and stayed so, taking side a's steps before side b's
      (the two dumps share no clock), and compared against the other side's latest step at that point.

    Args:
        a: one timeline, as :func:`pass_timeline` returns it.
        b: the other.
        names: what to call the two sides in the description (``("jax", "tf")``).

    Returns:
        The divergence, or None when the structures never differ (the final modules then fuse the same kernels).
    """
    keys_a = [step.key for step in a]
    keys_b = [step.key for step in b]
    latest: list[PassStep | None] = [None, None]
    matcher = SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for step_a, step_b in zip(a[i1:i2], b[j1:j2]):
                latest = [step_a, step_b]
                if step_a.structure != step_b.structure:
                    return _divergence(step_a, step_a, step_b, None, names)
            continue
        diverged: tuple[PassStep, PassStep | None, PassStep | None, str] | None = None
        for side, step in [(0, s) for s in a[i1:i2]] + [(1, s) for s in b[j1:j2]]:
            was_equal = _structure(latest[0]) == _structure(latest[1])
            latest[side] = step
            if _structure(latest[0]) == _structure(latest[1]):
                diverged = None
            elif was_equal:
                diverged = (step, latest[0], latest[1], names[side])
        if diverged is not None:
            return _divergence(*diverged, names)
    return None


def _structure(step: PassStep | None) -> tuple[FusionSignature, ...]:
    return () if step is None else step.structure


def _divergence(at: PassStep, step_a: PassStep | None, step_b: PassStep | None, only_in: str | None,
                names: tuple[str, str]) -> Divergence:
    structure_a, structure_b = Counter(_structure(step_a)), Counter(_structure(step_b))
    only_a = tuple(sorted((structure_a - structure_b).elements()))
    only_b = tuple(sorted((structure_b - structure_a).elements()))
    where = f"after {at.label}" + (f", only in {only_in}'s dumps" if only_in else "")
    kinds_a, kinds_b = _kinds(step_a), _kinds(step_b)
    text = f"{where}: {names[0]} has {_count(kinds_a, 'fusion')}, {names[1]} has {_count(kinds_b)}"
    if kinds_a == kinds_b:
        differ = f"{len(only_a)} fusion fuses" if len(only_a) == 1 else f"{len(only_a)} fusions fuse"
        text += f"; same kinds and counts, but {differ} different ops"
    return Divergence(at.pass_name, at.pipeline, step_a, step_b, only_in, text, only_a, only_b)


def _kinds(step: PassStep | None) -> dict[str, int]:
    return {} if step is None else step.fusions_by_kind


def _count(kinds: dict[str, int], noun: str = "") -> str:
    total = sum(kinds.values())
    text = str(total) if not noun else f"{total} {noun}{'' if total == 1 else 's'}"
    if kinds:
        text += " (" + ", ".join(f"{kind} {n}" for kind, n in kinds.items()) + ")"
    return text
