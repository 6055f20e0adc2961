"""``manifest.json``, filed beside every dump: what was compiled, by what, where, and how to make it again.

:class:`DumpManifest` is written by :mod:`.capture` and read by everything that shows where a dump came from (the
report, ``diff``'s compiler labels, the demo), always through :meth:`DumpManifest.read`, so an older or foreign
manifest fails with one line naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from xlainspect.runners.reading import Fields, read_json_file, write_json_file

MANIFEST_HINT = "not a manifest that 'xlainspect dump' wrote (an older or foreign file?)"


@dataclass(frozen=True)
class DumpManifest:
    """``manifest.json`` beside a dump: what was compiled, by what, where, and how to make it again.

    Attributes:
        parameters: ``batch_size``, ``dtype`` and the program's hyperparameters.
        shapes: every input's shape at that batch size.
        compiler: which front end and which compiler made the module, e.g. ``TF front end, JAX's XLA (jaxlib
            0.10.2), on this machine's CPU``. The four keys from ``compiler`` to ``target`` came with GPU dumps;
            manifests made before read as "" (say :attr:`compiled_by`), the backend, False and None.
        backend_folder: the folder under the dumps folder (``cpu``, ``gpu``, ``gpu-h100``).
        original_before, original_after: the file names XLA gave the two modules (``original_files``).
        pass_dump_files: how many pass dumps are under ``passes/``; None when none were kept.
        source_root: the folder that source paths in the module text were made relative to (the repository or
            the working folder the dump was made in), so the filed text names no machine; None when no path was
            rewritten. ``source_paths_rewritten`` says how many.
        interpreter: the Python that ran the framework when it was not xlainspect's own (``--python``), e.g. a
            virtual environment with another jax; ``python`` and the versions above are then that interpreter's.
    """

    program: str
    description: str
    parameters: Mapping[str, Any]
    shapes: Mapping[str, tuple[int, ...]]
    framework: str
    framework_version: str
    xla_version: str
    compiler: str
    backend: str
    backend_folder: str
    deviceless: bool
    target: str | None
    device: str
    host_cpu: str
    xla_flags: str
    module_name: str
    original_before: str
    original_after: str
    compile_and_first_run_s: float
    child_process_s: float
    created_utc: str
    xlainspect_version: str
    python: str
    platform: str
    regenerate: str
    pass_dump_files: int | None = None
    source_root: str | None = None
    source_paths_rewritten: int = 0
    interpreter: str | None = None

    @property
    def batch_size(self) -> int | None:
        """The batch size the program was compiled at, None for a program without one."""
        return self.parameters.get("batch_size")

    @property
    def compiled_by(self) -> str:
        """``compiler``, or for a manifest older than that key the XLA version."""
        return self.compiler or self.xla_version

    def with_pass_dump_files(self, count: int) -> DumpManifest:
        return replace(self, pass_dump_files=count)

    def to_json(self) -> dict[str, Any]:
        data = {"program": self.program, "description": self.description, "parameters": dict(self.parameters),
                "shapes": {name: list(shape) for name, shape in self.shapes.items()},
                "framework": self.framework, "framework_version": self.framework_version,
                "xla_version": self.xla_version, "compiler": self.compiler, "backend": self.backend,
                "backend_folder": self.backend_folder, "deviceless": self.deviceless, "target": self.target,
                "device": self.device, "host_cpu": self.host_cpu, "xla_flags": self.xla_flags,
                "module_name": self.module_name,
                "original_files": {"before_optimizations": self.original_before,
                                   "after_optimizations": self.original_after},
                "compile_and_first_run_s": self.compile_and_first_run_s, "child_process_s": self.child_process_s,
                "created_utc": self.created_utc, "xlainspect_version": self.xlainspect_version,
                "python": self.python, "platform": self.platform, "regenerate": self.regenerate}
        if self.pass_dump_files is not None:
            data["pass_dump_files"] = self.pass_dump_files
        if self.source_root is not None:
            data["source_paths"] = {"relative_to": self.source_root, "rewritten": self.source_paths_rewritten}
        if self.interpreter is not None:
            data["interpreter"] = self.interpreter
        return data

    @classmethod
    def from_json(cls, data: Any, source: str) -> DumpManifest:
        f = Fields(data, source, MANIFEST_HINT)
        shapes = f.record("shapes")
        files = f.record("original_files")
        backend = f.get("backend", str)
        paths = f.record("source_paths") if "source_paths" in f.data else None
        return cls(f.get("program", str), f.get("description", str), f.scalars("parameters"),
                   {name: shapes.items(name, int) for name in shapes.data}, f.get("framework", str),
                   f.get("framework_version", str), f.get("xla_version", str), f.get("compiler", str, ""), backend,
                   f.get("backend_folder", str, backend), f.get("deviceless", bool, False),
                   f.get("target", str, None, nullable=True), f.get("device", str), f.get("host_cpu", str),
                   f.get("xla_flags", str), f.get("module_name", str), files.get("before_optimizations", str),
                   files.get("after_optimizations", str), f.get("compile_and_first_run_s", float),
                   f.get("child_process_s", float), f.get("created_utc", str), f.get("xlainspect_version", str),
                   f.get("python", str), f.get("platform", str), f.get("regenerate", str),
                   f.get("pass_dump_files", int, None),
                   paths.get("relative_to", str) if paths is not None else None,
                   paths.get("rewritten", int) if paths is not None else 0,
                   f.get("interpreter", str, None))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> DumpManifest:
        """The manifest in ``path``.

        Raises:
            InputError: the file cannot be read.
            RecordError: it is not a manifest this xlainspect wrote (the line names the key).
        """
        return cls.from_json(read_json_file(path, MANIFEST_HINT), str(path))

    def write(self, path: str | os.PathLike[str]) -> None:
        write_json_file(path, self.to_json())
