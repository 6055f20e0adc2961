"""The modules of a folder XLA's ``--xla_dump_to`` wrote: which there are, in which order, and which is the program's.

A program's dump folder holds, beside its own step, every helper module its framework compiled on the way
(``jit_convert_element_type``, ``jit__threefry_split``, TF's ``a_inference_...`` wrappers), each with its side
files. This module names them from their file names (``module_0004.jit_step.cpu_after_optimizations.txt``), counts
their instructions without parsing them, and picks one by index or by a regular expression on the name.

The main module, when none is picked, is the after-optimization module with the most instructions, leaving out the
modules JAX compiles for ops it runs eagerly and for its private wrappers (``jit_convert_element_type``,
``jit__normal``...; see :func:`is_helper`), which can outgrow a small step.
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


def instruction_lines(path: Path) -> int:
    """How many instruction lines an HLO text file holds, counted without parsing it."""
    return len(_INSTRUCTION_LINE_RE.findall(path.read_bytes()))


@dataclass(frozen=True)
class DumpedModule:
    """One module XLA dumped: its files before and after optimization, and its size.

    Attributes:
        number: XLA's module id (``module_0004`` is 4), which follows the order of compilation.
        name: the module's name (``jit_step``, ``a_inference_step_123__.45``).
        before: the module before optimization, when it was dumped.
        after: the optimized module, when it was dumped (a compile that failed leaves only ``before``).
        instructions: instruction lines of ``after`` (else of ``before``).
    """

    number: int
    name: str
    before: Path | None
    after: Path | None
    instructions: int

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
        counted = files.get("after") or files["before"]
        modules.append(DumpedModule(number, name, files.get("before"), files.get("after"), instruction_lines(counted)))
    return tuple(modules)


# JAX compiles one module per primitive it runs eagerly, outside any jit (``jnp.asarray``, ``x + 1``, making inputs),
# named ``jit_<primitive>``; its own private wrappers (``jax.random``'s ``_normal``, ``_threefry_split``, ``jnp``'s
# ``_reduce_sum``) are ``jit__<name>``. Such a helper can outgrow a small step (``jit__normal`` has ~300
# instructions), so the main-module rule passes over them by name.
_JAX_EAGER_PRIMITIVES = frozenset("""
abs acos add and argmax argmin asin atan atan2 bitcast_convert_type broadcast_in_dim cbrt ceil clamp concatenate
convert_element_type copy copy_p cos cosh cumsum cumprod cummax cummin device_put div dot_general dynamic_slice
dynamic_update_slice eq erf erf_inv exp exp2 expand_dims expm1 floor gather ge gt imag integer_pow iota is_finite le
log log1p logistic lt max min mul ne neg nextafter not or pad pow random_bits random_fold_in random_seed random_split
random_unwrap random_wrap real reduce_and reduce_max reduce_min reduce_or reduce_precision reduce_prod reduce_sum
rem reshape rev round rsqrt scatter scatter-add scatter_add select_and_gather_add select_n shift_left
shift_right_arithmetic shift_right_logical sign sin sinh slice sort sqrt square squeeze stop_gradient sub tan tanh
threefry2x32 transpose xor
""".split())


def is_helper(name: str) -> bool:
    """Whether a module is one JAX compiled for an eager op or a private wrapper, not the user's program."""
    return name.startswith("jit__") or (name.startswith("jit_") and name[4:] in _JAX_EAGER_PRIMITIVES)


def main_module(modules: tuple[DumpedModule, ...]) -> DumpedModule | None:
    """The program's own module: the optimized one with the most instructions, JAX's helpers aside
    (:func:`is_helper`; when there is nothing else, the largest of them), the first compiled on a tie."""
    optimized = [module for module in modules if module.after is not None]
    own = [module for module in optimized if not is_helper(module.name)]
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
    matched = [module for module in modules if pattern.search(module.name)]
    if len(matched) == 1:
        return matched[0]
    names = ", ".join(module.name for module in (matched or modules)[:8])
    more = "..." if len(matched or modules) > 8 else ""
    if not matched:
        raise InputError(f"{where}: no module name matches --module {selector!r}; the modules are {names}{more}")
    raise InputError(f"{where}: {len(matched)} modules match --module {selector!r} ({names}{more}); make it "
                     "match one, e.g. anchor it with ^ and $")
