"""Naming the two sides of a comparison: a framework's filed dump, a dump folder, or an HLO file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xlainspect.errors import InputError
from xlainspect.hlo.files import main_module_file
from xlainspect.runners.manifest import DumpManifest

FRAMEWORK_NAMES = ("jax", "tf", "tf_via_jax")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the optimized module's file and what compiled it ("" when no manifest says)."""

    label: str
    path: Path
    compiler: str = ""


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
    """Whether ``spec`` names a framework's filed dump (``jax``, ``tf``, ``tf_via_jax``) rather than a path."""
    return spec in FRAMEWORK_NAMES and not Path(spec).exists()


def resolve_side(spec: str, program: str | None, dumps: str, backend: str, target: str | None = None) -> Side:
    """Turns ``jax``/``tf``/``tf_via_jax`` (with a program), a dump folder or an HLO file into the file to read.

    Raises:
        InputError: a framework name without ``--program``, or a path that does not exist or holds no module (a
            folder: ``after_optimizations.txt``, or the largest module XLA's ``--xla_dump_to`` wrote).
        RecordError: a dump's ``manifest.json`` is not one ``xlainspect dump`` wrote.
    """
    if names_framework(spec):
        asked = program
        if program is not None:
            from xlainspect.programs import choose_program

            program = choose_program(program).name  # a user's FILE.py:NAME is filed as <stem>.<NAME>
        if program is None:
            raise InputError(f"'{spec}' names a framework; add --program NAME to pick the dump "
                             f"({dumps}/{backend}/<program>/{spec}/), or give a path")
        folder = backend_folder(dumps, backend, program, target)
        path = Path(dumps) / folder / program / spec / "after_optimizations.txt"
        if not path.is_file():
            framework = "tf --compiler jax" if spec == "tf_via_jax" else spec
            where = f" --target {folder[4:]}" if folder.startswith("gpu-") else ""
            raise InputError(f"{path}: no dump; make it with 'xlainspect dump --program {asked} "
                             f"--framework {framework} --backend {backend}{where} --out {dumps}'")
    else:
        path = Path(spec)
        if path.is_dir():
            path = main_module_file(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file; give a framework name (jax, tf), a dump folder or an HLO file")
    return Side(spec, path, _compiler(path))


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
