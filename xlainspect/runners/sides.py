"""Naming the two sides of a comparison: a framework's filed dump, a dump folder, or an HLO file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.errors import InputError
from xlainspect.hlo.dump_folder import MODULE_FILE_RE
from xlainspect.hlo.files import module_location
from xlainspect.runners.manifest import DumpManifest

if TYPE_CHECKING:
    from xlainspect.hlo.model import HloModule

FRAMEWORK_NAMES = ("jax", "tf", "tf_via_jax", "torch_xla", "torch_xla_via_jax")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the optimized module's file and what compiled it ("" when no manifest says).

    Attributes:
        label: the side's name as shown (``--label-a``; else the framework, or the folder or file name).
        path: the file to read.
        compiler: the XLA version a manifest names, else "".
        index: which module of the file (``--module`` on a file holding several).
    """

    label: str
    path: Path
    compiler: str = ""
    index: int = 0

    def read(self) -> HloModule:
        """The side's module, parsed.

        Raises:
            HloParseError: the file is not HLO.
        """
        from xlainspect.hlo.parse import read_hlo

        return read_hlo(self.path)[self.index]

    @property
    def pass_module(self) -> str | None:
        """Which module's pass dumps beside :attr:`path` are this side's: ``module_NNNN`` for a module of a raw XLA
        dump folder, None for a filed dump (its ``passes/`` holds one module's)."""
        match = MODULE_FILE_RE.match(self.path.name)
        return f"module_{int(match.group(1)):04d}" if match else None


def backend_folder(dumps: str, backend: str, program: str, target: str | None = None) -> str:
    """The folder under ``dumps`` that holds a backend's dumps of ``program``.

    ``gpu`` means the dumps compiled on a GPU when there are some, else the deviceless ones (``gpu-<target>``,
    ``gpu-h100`` first); ``target`` picks a deviceless folder explicitly.
    """
    if backend != "gpu":
        return backend
    if target is not None:
        return f"gpu-{Path(target).stem}"
    if (Path(dumps) / "gpu" / program).is_dir():
        return "gpu"
    found = sorted(path.parent.name for path in Path(dumps).glob(f"gpu-*/{program}"))
    return "gpu-h100" if "gpu-h100" in found or not found else found[0]


def names_framework(spec: str) -> bool:
    """Whether ``spec`` names a framework's filed dump (``jax``, ``tf``, ``tf_via_jax``, ``torch_xla``) rather than
    a path."""
    return spec in FRAMEWORK_NAMES and not Path(spec).exists()


def resolve_side(spec: str, program: str | None, dumps: str, backend: str, target: str | None = None,
                 module: str | None = None, label: str | None = None) -> Side:
    """Turns ``jax``/``tf``/``tf_via_jax`` (with a program), a dump folder or an HLO file into the module to read.

    Args:
        module: ``--module``: which module (see :func:`~xlainspect.hlo.files.module_location`); None for a raw dump
            folder's main module, else the file's first.
        label: the name to show; None for the framework name, or the folder or file name.

    Raises:
        InputError: a framework name without ``--program``, or a path that does not exist or holds no module (a
            folder: ``after_optimizations.txt``, or the largest module XLA's ``--xla_dump_to`` wrote).
        RecordError: a dump's ``manifest.json`` is not one ``xlainspect dump`` wrote.
    """
    if names_framework(spec):
        if program is None:
            raise InputError(f"'{spec}' names a framework; add --program NAME to pick the dump "
                             f"({dumps}/{backend}/<program>/{spec}/), or give a path")
        from xlainspect.programs import choose_program

        filed = choose_program(program).name  # a user's FILE.py:NAME is filed as <stem>.<NAME>
        folder = backend_folder(dumps, backend, filed, target)
        path = Path(dumps) / folder / filed / spec / "after_optimizations.txt"
        if not path.is_file():
            framework = "tf --compiler jax" if spec == "tf_via_jax" else spec
            where = f" --target {folder[4:]}" if folder.startswith("gpu-") else ""
            raise InputError(f"{path}: no dump; make it with 'xlainspect dump --program {program} "
                             f"--framework {framework} --backend {backend}{where} --out {dumps}'")
    else:
        path = Path(spec)
        if not path.exists():
            if spec == "torch":
                raise InputError("torch: eager PyTorch compiles no XLA module; compare PyTorch/XLA's with torch_xla")
            raise InputError(f"{path}: no such file; give a framework name ({', '.join(FRAMEWORK_NAMES)}), a dump "
                             "folder or an HLO file")
    path, index = module_location(path, module)
    return Side(label or default_label(spec), path, _compiler(path), index)


def default_label(spec: str) -> str:
    """A side's name when the user gives none: the framework it names, else its folder or file name."""
    return spec if names_framework(spec) else (Path(spec).name or spec)


def manifest_beside(path: Path) -> DumpManifest | None:
    """The manifest of the dump that ``path`` belongs to; None for a file that no ``xlainspect dump`` filed.

    Only an ``after_optimizations.txt`` is a dump's file: beside any other HLO file a ``manifest.json`` may be
    another tool's, and is left alone.

    Raises:
        RecordError: a dump's ``manifest.json`` is not one ``xlainspect dump`` wrote.
    """
    manifest = path.parent / "manifest.json"
    if path.name != "after_optimizations.txt" or not manifest.is_file():
        return None
    return DumpManifest.read(manifest)


def _compiler(path: Path) -> str:
    manifest = manifest_beside(path)
    return manifest.xla_version if manifest is not None else ""
