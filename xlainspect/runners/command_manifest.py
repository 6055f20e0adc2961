"""``manifest.json`` beside the modules ``xlainspect dump -- CMD`` filed: the command, what it ran on, what it compiled.

:class:`CommandManifest` is written by :mod:`.command_capture` and read back only through :meth:`CommandManifest.read`,
so an older or foreign manifest fails with one line naming the key. A program's dump has its own record
(:mod:`.manifest`): a command has no program, batch size or shapes, but many modules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlainspect.runners.reading import Fields, read_json_file, write_json_file

COMMAND_MANIFEST_HINT = "not a manifest that 'xlainspect dump -- CMD' wrote (an older or foreign file?)"
# Which XLA each front end compiles with: JAX's is jaxlib's, TF's is built into TF, PyTorch's is torch_xla's.
_XLA_OF = ("jaxlib", "tensorflow", "torch_xla")


def xla_builds(versions: Mapping[str, str]) -> tuple[str, ...]:
    """The XLA builds among the versions found, e.g. ``("jaxlib 0.12.0.1",)``: the package each XLA came in."""
    return tuple(f"{name} {versions[name]}" for name in _XLA_OF if name in versions)


@dataclass(frozen=True)
class CommandModule:
    """One module the command compiled, as filed.

    Attributes:
        number: XLA's module id, which follows the order of compilation (within one process).
        name: the module's name (``jit_train_step``, ``a_inference_step_123__.45``).
        backend: the compiler that optimized it, from the file name (``cpu``, ``gpu``, ``sm_9.0a_gpu``); None when
            compiling failed before the optimized module was written.
        instructions: instruction lines of the optimized module (else of the one before optimization).
        kernels: kernels the optimized module launches (:func:`~xlainspect.analysis.census.census`); None when there
            is no optimized module or xlainspect could not parse it.
        main: whether this is the program's main module: the optimized one with the most instructions.
        before, after: the file names in the filed folder (XLA's own), None when XLA wrote none.
    """

    number: int
    name: str
    backend: str | None
    instructions: int
    kernels: int | None
    main: bool
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "backend": self.backend,
                "instructions": self.instructions, "kernels": self.kernels, "main": self.main,
                "files": {"before_optimizations": self.before, "after_optimizations": self.after}}

    @classmethod
    def from_json(cls, f: Fields) -> CommandModule:
        files = f.record("files")
        return cls(f.get("number", int), f.get("name", str), f.optional("backend", str), f.get("instructions", int),
                   f.optional("kernels", int), f.get("main", bool), files.optional("before_optimizations", str),
                   files.optional("after_optimizations", str))


@dataclass(frozen=True)
class CommandManifest:
    """What ``xlainspect dump -- CMD`` ran and filed.

    Attributes:
        command: the command as run (argv).
        working_folder: where it ran.
        interpreter: the Python that imported a framework (``sys.executable`` as the process saw it), else the first
            Python the command ran; None when no Python process reported (not Python, or it ignored PYTHONPATH).
        python_version: that interpreter's version, None with it.
        versions: the framework packages the command imported, by module name (``jax``, ``jaxlib``, ``tensorflow``,
            ``torch``, ``torch_xla``); empty when none was reported.
        xla: which XLA builds compiled, from ``versions`` (:func:`xla_builds`).
        backends: the compilers found in the file names, in the order first used (``cpu``, ``sm_9.0a_gpu``).
        exit_status: the command's status as a shell gives it (128 + N when signal N ended it).
        xla_flags: the ``XLA_FLAGS`` the command ran with, the temporary dump folder written ``<dump dir>``.
        module_filter: ``--module``'s regular expression; None when every module was kept.
        modules: the modules filed, in compile order; exactly one is ``main`` unless none was optimized.
        processes: how many Python processes reported versions.
        pass_dump_files: how many pass dumps are under ``passes/``; None when none were asked for.
        regenerate: the command line that makes this dump again, from ``working_folder``.
    """

    command: tuple[str, ...]
    working_folder: str
    interpreter: str | None
    python_version: str | None
    versions: Mapping[str, str]
    xla: tuple[str, ...]
    backends: tuple[str, ...]
    exit_status: int
    xla_flags: str
    module_filter: str | None
    modules: tuple[CommandModule, ...]
    processes: int
    pass_dump_files: int | None
    duration_s: float
    created_utc: str
    xlainspect_version: str
    regenerate: str

    @property
    def main_module(self) -> CommandModule | None:
        """The program's main module, None when the command compiled no optimized module."""
        return next((module for module in self.modules if module.main), None)

    def to_json(self) -> dict[str, Any]:
        return {"command": list(self.command), "working_folder": self.working_folder,
                "interpreter": self.interpreter, "python_version": self.python_version,
                "versions": dict(self.versions), "xla": list(self.xla), "backends": list(self.backends),
                "exit_status": self.exit_status, "xla_flags": self.xla_flags, "module_filter": self.module_filter,
                "main_module": self.main_module.name if self.main_module else None,
                "modules": [module.to_json() for module in self.modules], "processes": self.processes,
                "pass_dump_files": self.pass_dump_files, "duration_s": self.duration_s,
                "created_utc": self.created_utc, "xlainspect_version": self.xlainspect_version,
                "regenerate": self.regenerate}

    @classmethod
    def from_json(cls, data: Any, source: str) -> CommandManifest:
        f = Fields(data, source, COMMAND_MANIFEST_HINT)
        versions = f.record("versions")
        return cls(f.items("command", str), f.get("working_folder", str), f.optional("interpreter", str),
                   f.optional("python_version", str), {name: versions.get(name, str) for name in versions.data},
                   f.items("xla", str), f.items("backends", str), f.get("exit_status", int), f.get("xla_flags", str),
                   f.optional("module_filter", str), tuple(CommandModule.from_json(m) for m in f.records("modules")),
                   f.get("processes", int), f.optional("pass_dump_files", int), f.get("duration_s", float),
                   f.get("created_utc", str), f.get("xlainspect_version", str), f.get("regenerate", str))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CommandManifest:
        """The manifest in ``path``.

        Raises:
            InputError: the file cannot be read.
            RecordError: it is not a manifest ``dump -- CMD`` wrote (the line names the key).
        """
        return cls.from_json(read_json_file(path, COMMAND_MANIFEST_HINT), str(path))

    def write(self, path: str | os.PathLike[str]) -> None:
        write_json_file(path, self.to_json())
