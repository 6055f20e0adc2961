"""The modules of a folder XLA's ``--xla_dump_to`` wrote: which there are, in which order, and which is the program's.

A program's dump folder holds, beside its own step, every helper module its framework compiled on the way
(``jit_convert_element_type``, ``jit__threefry_split``, TF's ``a_inference_...`` wrappers), each with its side
files. This module names them from their file names (``module_0004.jit_step.cpu_after_optimizations.txt``), counts
their instructions without parsing them, and picks one by index or by a regular expression on the name.

The main module, when none is picked, is the after-optimization module with the most instructions, helpers
excluded. JAX's helpers are of two kinds, both told from the module itself: its private functions (``jit__normal``,
``jit__threefry_split``: the name starts ``jit__``), which can outgrow a small step (``jax.random.normal`` compiles
to nearly 300 instructions), and single primitives run outside ``jit`` (``jit_convert_element_type``,
``jit_broadcast_in_dim``: every op the module names is ``jit(P)/P`` for the primitive ``P`` it is named after).
PyTorch/XLA's helpers are the ``<name>_clear_pending`` graphs that ``torch_xla.compile(name=...)`` runs first, for
whatever was pending (a script's random inputs: 549 instructions beside a 12-instruction step). When every optimized
module is a helper, the largest of them is the main one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from xlainspect.errors import InputError

# module_0004.jit_f.before_optimizations.txt, module_0004.jit_f.cpu_after_optimizations.txt (or gpu_, sm_9.0a_gpu_).
# Module names may hold dots (TF's end in ".1"), so the backend prefix is matched by its known forms.
MODULE_FILE_RE = re.compile(
    r"module_(\d+)\.(.+?)\.(before_optimizations|(?:sm_[0-9.]+[a-z]?_)?[a-z]+_after_optimizations)\.txt$")
# An instruction line: what "the most instructions" counts.
_INSTRUCTION_LINE_RE = re.compile(rb"^[ \t]+(?:ROOT[ \t]+)?%?[A-Za-z_][\w.\-]*[ \t]*=", re.M)
_OP_NAME_RE = re.compile(rb'op_name="([^"]*)"')


def instruction_lines(path: Path) -> int:
    """How many instruction lines an HLO text file holds, counted without parsing it."""
    return len(_INSTRUCTION_LINE_RE.findall(path.read_bytes()))


def is_helper(name: str, text: bytes) -> bool:
    """Whether a module is one a framework compiled for itself rather than the user's program (see the module
    docstring): JAX's one-primitive helpers, and PyTorch/XLA's ``<name>_clear_pending`` graphs, which compute the
    tensors still pending when ``torch_xla.compile(name=...)`` starts (a script's random inputs, say).

    Args:
        name: the module's name.
        text: the module's HLO text, whose ``op_name`` metadata says what each op came from.
    """
    if name.startswith("jit__") or re.search(r"_clear_pending(\.\d+)?$", name):
        return True
    if not name.startswith("jit_"):
        return False
    primitive = name[len("jit_"):].encode()
    ops = {op for op in _OP_NAME_RE.findall(text) if not op.startswith(b"args[")}
    return ops <= {b"jit(" + primitive + b")/" + primitive}


@dataclass(frozen=True)
class DumpedModule:
    """One module XLA dumped: its files before and after optimization, and its size.

    Attributes:
        number: XLA's module id (``module_0004`` is 4), which follows the order of compilation.
        name: the module's name (``jit_step``, ``a_inference_step_123__.45``).
        before: the module before optimization, when it was dumped.
        after: the optimized module, when it was dumped (a compile that failed leaves only ``before``).
        instructions: instruction lines of ``after`` (else of ``before``).
        helper: whether JAX compiled it for itself (:func:`is_helper`), not for the user's program.
    """

    number: int
    name: str
    before: Path | None
    after: Path | None
    instructions: int
    helper: bool = False

    @property
    def stages(self) -> tuple[str, ...]:
        """Which of ``before`` and ``after`` optimization there are."""
        return tuple(stage for stage, path in (("before", self.before), ("after", self.after)) if path is not None)

    @property
    def backend(self) -> str | None:
        """The compiler that optimized the module, from its file name (``cpu``, ``gpu``, ``sm_9.0a_gpu``); None
        without an optimized file."""
        match = MODULE_FILE_RE.match(self.after.name) if self.after is not None else None
        return match.group(3).removesuffix("_after_optimizations") if match is not None else None

    @property
    def file(self) -> Path:
        """The file to read: the optimized module when there is one."""
        path = self.after or self.before
        assert path is not None  # a module is only listed for a file it has
        return path


def dumped_modules(folder: str | os.PathLike[str]) -> tuple[DumpedModule, ...]:
    """Every module XLA's dumper wrote into ``folder`` (not its subfolders), in the order they were compiled."""
    found: dict[tuple[int, str], dict[str, Path]] = {}
    for path in Path(folder).glob("module_*.txt"):
        match = MODULE_FILE_RE.match(path.name)
        if match is None:
            continue
        number, name, stage = match.groups()
        found.setdefault((int(number), name), {})["before" if stage == "before_optimizations" else "after"] = path
    modules = []
    for (number, name), files in sorted(found.items()):
        text = (files.get("after") or files["before"]).read_bytes()
        modules.append(DumpedModule(number, name, files.get("before"), files.get("after"),
                                    len(_INSTRUCTION_LINE_RE.findall(text)), is_helper(name, text)))
    return tuple(modules)


def main_module(modules: tuple[DumpedModule, ...]) -> DumpedModule | None:
    """The program's own module: the optimized one with the most instructions, helpers excluded unless all are
    helpers (the first compiled on a tie)."""
    optimized = [module for module in modules if module.after is not None]
    own = [module for module in optimized if not module.helper]
    return max(own or optimized, key=lambda module: module.instructions, default=None)


def pick_module(modules: tuple[DumpedModule, ...], selector: str | None, where: str) -> DumpedModule:
    """The module ``selector`` names: None for the main one, an integer for a position in compile order (negative
    counts from the end), else a regular expression searched in the names, which must match exactly one.

    Args:
        where: the folder, for messages.

    Raises:
        InputError: no module, a bad expression, a position out of range, or an expression that matches none or
            several; the message lists what there is.
    """
    if not modules:
        raise InputError(f"{where}: XLA dumped no modules here (no module_*.txt); give the folder --xla_dump_to "
                         "named, or an HLO file")
    if selector is None:
        chosen = main_module(modules)
        if chosen is None:
            raise InputError(f"{where}: no optimized module (only before_optimizations files; did compiling "
                             "fail?); pick one with --module")
        return chosen
    if re.fullmatch(r"-?\d+", selector.strip()):
        index = int(selector)
        if not -len(modules) <= index < len(modules):
            raise InputError(f"{where}: has {len(modules)} module(s); --module {selector} must be 0 to "
                             f"{len(modules) - 1}, or a regular expression on the name")
        return modules[index]
    try:
        pattern = re.compile(selector)
    except re.error as e:
        raise InputError(f"--module {selector!r}: not a regular expression ({e}); give one, or a position") from e
    matched = [(position, module) for position, module in enumerate(modules) if pattern.search(module.name)]
    if len(matched) == 1:
        return matched[0][1]
    if not matched:
        names = ", ".join(module.name for module in modules[:8])
        more = "..." if len(modules) > 8 else ""
        raise InputError(f"{where}: no module name matches --module {selector!r}; the modules are {names}{more}")
    # Positions, not just names: one function jitted twice (or its gradient) dumps modules of the same name.
    names = ", ".join(f"#{position} {module.name}" for position, module in matched[:8])
    more = "..." if len(matched) > 8 else ""
    raise InputError(f"{where}: {len(matched)} modules match --module {selector!r} ({names}{more}); give one's "
                     "position (--module 3), or a regular expression only its name matches (anchor it with ^ and $)")


def result_arrays(module: DumpedModule) -> int:
    """How many arrays the module returns, from its header's ``entry_computation_layout`` (0 when it has none).

    PyTorch/XLA sometimes compiles a step a second time, under the same name, with intermediates that were still
    alive at its sync as extra outputs; of a step's modules, the one returning the fewest arrays is the step itself.
    """
    with open(module.file, encoding="utf-8") as file:
        header = file.readline()
    _, arrow, result = header.partition(")->")
    return result.count("[") if arrow else 0
