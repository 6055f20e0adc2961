"""Capturing what XLA compiled for a synthetic program: one child process per framework, filed with a manifest.

Layout: ``DIR/<backend>/<program>/<framework>/`` holding ``before_optimizations.txt``, ``after_optimizations.txt``,
``manifest.json`` and, when asked, ``passes/``. Each framework's folder is assembled under a temporary name beside
its final place and renamed when complete, so an interrupted capture never leaves a half-written dump, and an
existing dump is replaced only with ``force`` (and only once the new one is complete).
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect import __version__
from xlainspect.errors import InputError
from xlainspect.hlo.dump_folder import dumped_modules, main_module, result_arrays
from xlainspect.hlo.files import assembled_folder
from xlainspect.runners.children import (
    ChildFailed,
    NotProvided,
    child_python,
    dump_flags,
    run_child,
    skip_unprovided,
)
from xlainspect.runners.manifest import DumpManifest
from xlainspect.runners.portable import portable_path, portable_text, source_roots
from xlainspect.runners.protocol import CompileRequest, CompileResult, ExportResult

if TYPE_CHECKING:
    from xlainspect.programs import ProgramChoice
    from xlainspect.runners.gpu_targets import GpuTarget

FRAMEWORKS = ("jax", "tf")  # the seed's pair: what a command runs when no framework is named
XLA_FRAMEWORKS = ("jax", "tf", "torch_xla")  # the front ends whose programs XLA compiles into a module to dump
ALL_FRAMEWORKS = ("jax", "tf", "torch", "torch_xla")  # everything that runs a program (torch: eager, no XLA)
TORCH_FRAMEWORKS = ("torch", "torch_xla")
BACKENDS = ("cpu", "gpu")
COMPILERS = ("native", "jax")
TF_VIA_JAX = "tf_via_jax"  # the folder of TF's module compiled by JAX's XLA (--compiler jax on a real device)
TORCH_XLA_VIA_JAX = "torch_xla_via_jax"  # PyTorch/XLA's module compiled by JAX's XLA
@dataclass(frozen=True)
class FrameworkDump:
    """One framework's capture, as filed."""

    framework: str
    directory: Path
    module_name: str
    manifest: DumpManifest
    frameworks: tuple[str, ...] = FRAMEWORKS


@dataclass(frozen=True)
class DumpFailure:
    """A framework whose capture failed, with the one-line reason and what to do."""

    framework: str
    message: str


@dataclass(frozen=True)
class DumpOutcome:
    """What ``dump_program`` wrote and what failed; the CLI exits non-zero when ``failures`` is not empty."""

    dumps: tuple[FrameworkDump, ...]
    failures: tuple[DumpFailure, ...]


def dump_directory(out_dir: str | os.PathLike[str], backend: str, program: str, framework: str) -> Path:
    """Where a framework's dump of a program is filed; ``backend`` is the folder name (``cpu``, ``gpu-h100``)."""
    return Path(out_dir) / backend / program / framework


def gpu_visible() -> bool:
    """Whether this machine has an NVIDIA GPU the frameworks could run on (``nvidia-smi -L`` lists one)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


@dataclass(frozen=True)
class _Route:
    """How one framework's module gets compiled, and where it is filed.

    Attributes:
        backend_folder: ``cpu``, ``gpu`` (compiled on this machine's GPU) or ``gpu-<target>`` (deviceless).
        framework_folder: ``jax``, ``tf``, ``tf_via_jax``, ``torch_xla`` or ``torch_xla_via_jax``.
        via_jax: another front end, JAX's XLA: a TF child exports its module (a PyTorch/XLA child dumps its
            unoptimized one), a JAX child compiles it.
        target: the GPU target for a deviceless compile, else None.
        compiler: one line for the manifest saying which front end and which compiler made the module.
    """

    backend_folder: str
    framework_folder: str
    via_jax: bool
    target: GpuTarget | None
    compiler: str


def _route(framework: str, backend: str, target: GpuTarget | None, compiler: str, on_gpu: bool) -> _Route:
    if framework == "torch_xla":
        # PyTorch/XLA's module, compiled by its own XLA; or (--compiler jax, or a GPU that is not there) its
        # unoptimized module handed to JAX's XLA, as TF's is.
        if backend == "cpu" or on_gpu:
            where = "this machine's GPU" if backend == "gpu" else "this machine's CPU"
            if compiler == "jax":
                return _Route(backend, TORCH_XLA_VIA_JAX, True, None, f"PyTorch/XLA front end, JAX's XLA ({{xla}}), "
                                                                      f"on {where}")
            return _Route(backend, framework, False, None, f"PyTorch/XLA front end, PyTorch/XLA's own XLA ({{xla}}), "
                                                           f"on {where}")
        assert target is not None
        return _Route(f"gpu-{target.name}", framework, True, target,
                      f"PyTorch/XLA front end, XLA GPU compiler from {{xla}}, deviceless, target {target.name} "
                      f"({target.description}, sm_{target.compute_capability})")
    if backend == "cpu" or on_gpu:
        via_jax = framework == "tf" and compiler == "jax"
        where = "this machine's GPU" if backend == "gpu" else "this machine's CPU"
        front = "JAX front end" if framework == "jax" else "TF front end"
        whose = "TF's own XLA" if framework == "tf" and not via_jax else "JAX's XLA"
        return _Route(backend, TF_VIA_JAX if via_jax else framework, via_jax, None,
                      f"{front}, {whose} ({{xla}}), on {where}")
    assert target is not None  # a GPU backend without a GPU compiles deviceless for a target
    via_jax = framework == "tf"  # TF cannot compile for a GPU it does not see
    front = "TF front end" if via_jax else "JAX front end"
    return _Route(f"gpu-{target.name}", framework, via_jax, target,
                  f"{front}, XLA GPU compiler from {{xla}}, deviceless, target {target.name} "
                  f"({target.description}, sm_{target.compute_capability})")


def dump_program(
    program_name: str,
    frameworks: tuple[str, ...] = FRAMEWORKS,
    out_dir: str | os.PathLike[str] = "dumps",
    backend: str = "cpu",
    batch_size: int | None = None,
    dtype: str = "float32",
    pass_dumps: bool = False,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    target: str = "h100",
    compiler: str = "native",
    python: str | None = None,
) -> DumpOutcome:
    """Compiles a synthetic program in each framework in a child process and files its HLO.

    Args:
        program_name: a built-in program's name (``xlainspect.programs.PROGRAMS``), or a user's ``FILE.py:NAME`` or
            ``package.module:NAME`` (see :mod:`xlainspect.programs.user`); a user's program giving no function for
            one of two frameworks asked for is skipped with a note.
        frameworks: any of ``"jax"``, ``"tf"``.
        out_dir: the dumps folder.
        backend: ``"cpu"``, or ``"gpu"``: on this machine's GPU when it has one, else deviceless for ``target``
            (filed under ``gpu-<target>``; TF's module is then compiled by JAX's XLA, as the manifest says).
        batch_size: the program's batch size; None for its default.
        dtype: element type of parameters and data.
        pass_dumps: also keep XLA's dump after every pass, under ``passes/``.
        force: replace existing dumps.
        progress: called with short status lines while children run.
        target: the GPU to compile for without one: ``h100``, ``a100`` or a target description's path.
        compiler: ``jax`` compiles TF's module with JAX's XLA (filed as ``tf_via_jax``), separating what TF's
            front end emitted from what TF's own XLA version did with it.
        python: the interpreter that runs the framework, e.g. another virtual environment's ``bin/python`` with
            an older jax; it needs only the framework and numpy. None: ``$XLAINSPECT_PYTHON`` or xlainspect's own.

    Raises:
        InputError: an unknown program, framework or backend, or a dump that exists without ``force``; nothing is
            compiled or written then.
    """
    from xlainspect.programs import choose_program

    program = choose_program(program_name)
    if backend not in BACKENDS:
        raise InputError(f"unknown or unsupported backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    for framework in frameworks:
        if framework == "torch":
            raise InputError("torch: eager PyTorch compiles no XLA module to dump; dump torch_xla (PyTorch/XLA) "
                             "instead, and time eager PyTorch with 'xlainspect time --framework torch'")
        if framework not in XLA_FRAMEWORKS:
            raise InputError(f"unknown framework {framework!r}; choose one of: {', '.join(XLA_FRAMEWORKS)}")
    for framework in frameworks:
        if program.builtin is not None and (why := program.builtin.unavailable(framework)):
            raise InputError(f"{program.name}: {why}")
    if compiler == "jax" and "jax" in frameworks and len(frameworks) == 1:
        raise InputError("--compiler jax compiles TF's or PyTorch/XLA's module with JAX's XLA; JAX's own is so "
                         "already")
    if compiler not in COMPILERS:
        raise InputError(f"unknown compiler {compiler!r}; choose native or jax")
    from xlainspect.runners.gpu_targets import gpu_target

    interpreter = child_python(python)
    foreign = python is not None or interpreter != sys.executable

    gpu_target_ = gpu_target(target) if backend == "gpu" else None
    on_gpu = backend == "gpu" and gpu_visible()
    routes = {f: _route(f, backend, gpu_target_, compiler, on_gpu) for f in frameworks}
    batch_size = program.batch_size(batch_size)
    if dtype != "float32" and program.builtin is None:
        raise InputError(f"--dtype {dtype}: {program_name} makes its own inputs, in their own types; leave out "
                         "--dtype")
    if not force:
        for route in routes.values():
            existing = dump_directory(out_dir, route.backend_folder, program.name, route.framework_folder)
            if existing.exists():
                raise InputError(f"{existing}: a dump is already there; add --force to replace it")
    report = progress or (lambda line: None)
    dumps: list[FrameworkDump] = []
    failures: list[DumpFailure] = []
    for framework in frameworks:
        given = dumps[-1].frameworks if dumps else ALL_FRAMEWORKS
        if framework not in given:  # a user's program that gives one framework's function only
            skip_unprovided(framework, frameworks, program_name, report)
            continue
        try:
            dumps.append(_capture_one(program, framework, Path(out_dir), backend, batch_size, dtype, pass_dumps,
                                      report, routes[framework], target, compiler,
                                      _interpreter(framework, python, interpreter if foreign else None)))
        except NotProvided as e:
            if (failure := skip_unprovided(framework, frameworks, program_name, report, e)) is not None:
                failures.append(DumpFailure(framework, failure))
        except (_CaptureFailed, ChildFailed) as e:
            failures.append(DumpFailure(framework, str(e)))
            report(f"{framework}: failed")
    return DumpOutcome(tuple(dumps), tuple(failures))



def _interpreter(framework: str, python: str | None, chosen: str | None) -> str | None:
    """The interpreter to name for ``framework``'s child: ``chosen`` for JAX and TF; for PyTorch's only a
    ``--python`` given (else the child runs in PyTorch's own environment, see ``children.torch_python``)."""
    if framework in TORCH_FRAMEWORKS:
        return child_python(python) if python is not None else None
    return chosen


class _CaptureFailed(Exception):
    """One framework's capture failed; the message says why and what to do."""


def _capture_one(program: ProgramChoice, framework: str, out_dir: Path, backend: str, batch_size: int | None,
                 dtype: str, pass_dumps: bool, report: Callable[[str], None], route: _Route, target_name: str,
                 compiler: str, interpreter: str | None) -> FrameworkDump:
    target = dump_directory(out_dir, route.backend_folder, program.name, route.framework_folder)
    with tempfile.TemporaryDirectory(prefix=f"xlainspect-{framework}-") as scratch:
        raw_dir = Path(scratch) / "xla_dump"
        flags = dump_flags(raw_dir, pass_dumps)
        request = CompileRequest(program.spec, framework, batch_size, dtype)
        started = time.perf_counter()
        front_end_version = ""
        if route.via_jax and framework == "torch_xla":
            front_end_version, function_name, text = _torch_xla_module(request, Path(scratch), report, interpreter)
            proto = str(Path(scratch) / "torch_xla_before_optimizations.txt")
            Path(proto).write_text(text, encoding="utf-8")
            request = replace(request, framework="jax", hlo_proto=proto, function_name=function_name)
        elif route.via_jax:
            proto = str(Path(scratch) / "tf_before_optimizations.pb")
            exported = run_child(replace(request, export_hlo=proto), ExportResult, report, "exporting TF's module of",
                                 python=interpreter)
            front_end_version = exported.framework_version
            request = replace(request, framework="jax", hlo_proto=proto, function_name=exported.function_name)
        if route.target is not None:
            request = replace(request, target_config=route.target.config)
        child_backend = "gpu" if backend == "gpu" and route.target is None else "cpu"
        result = run_child(request, CompileResult, report,
                           "compiling" if route.via_jax or route.target is not None else "compiling and running",
                           xla_flags=flags, backend=child_backend, python=interpreter)
        elapsed = time.perf_counter() - started
        before, after, module_name = _select_module(raw_dir, result.function_name, framework)
        filed_interpreter = portable_path(interpreter, source_roots()) if interpreter is not None else None
        manifest = DumpManifest(
            program=program.name,
            description=result.description,
            parameters={"batch_size": result.batch_size, "dtype": dtype, **program.hyperparameters},
            shapes=result.shapes,
            framework=framework,
            framework_version=front_end_version or result.framework_version,
            xla_version=result.xla_version,
            compiler=route.compiler.format(xla=result.xla_version),
            backend=backend,
            backend_folder=route.backend_folder,
            deviceless=route.target is not None,
            target=route.target.name if route.target is not None else None,
            device=result.device,
            host_cpu=result.host_cpu,
            xla_flags=flags.replace(str(raw_dir), "<dump dir>"),
            module_name=module_name,
            original_before=before.name,
            original_after=after.name,
            compile_and_first_run_s=round(result.first_call_s, 3),
            child_process_s=round(elapsed, 3),
            created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            xlainspect_version=__version__,
            python=result.python,
            platform=result.platform,
            regenerate=_regenerate_command(program, framework, backend, batch_size, dtype, pass_dumps,
                                           target_name if backend == "gpu" else None, compiler, filed_interpreter),
            interpreter=filed_interpreter,
        )
        manifest = _file_dump(target, before, after, raw_dir, module_name if pass_dumps else None, manifest)
    report(f"{framework}: wrote {target} ({module_name})")
    return FrameworkDump(framework, target, module_name, manifest, result.frameworks)


def _torch_xla_module(request: CompileRequest, scratch: Path, report: Callable[[str], None],
                      interpreter: str | None) -> tuple[str, str, str]:
    """PyTorch/XLA's unoptimized module of the program, for JAX's XLA to compile: (PyTorch/XLA's version, the
    module's function name, its text as PyTorch/XLA's XLA dumped it)."""
    raw_dir = scratch / "torch_xla_dump"
    result = run_child(request, CompileResult, report, "tracing", xla_flags=dump_flags(raw_dir), python=interpreter)
    before, _, _ = _select_module(raw_dir, result.function_name, "torch_xla")
    return result.framework_version, result.function_name, before.read_text(encoding="utf-8")


def _regenerate_command(program: ProgramChoice, framework: str, backend: str, batch_size: int | None, dtype: str,
                        pass_dumps: bool, target: str | None = None, compiler: str = "native",
                        interpreter: str | None = None) -> str:
    parts = ["xlainspect", "dump", "--program", shlex.quote(program.spec), "--framework", framework,
             "--backend", backend]
    if target is not None:
        parts += ["--target", target]
    if compiler != "native":
        parts += ["--compiler", compiler]
    if batch_size is not None:
        parts += ["--batch-size", str(batch_size)]
    if dtype != "float32":
        parts += ["--dtype", dtype]
    if pass_dumps:
        parts.append("--pass-dumps")
    if interpreter is not None:
        parts += ["--python", shlex.quote(interpreter)]
    return " ".join(parts + ["--force"])


def _select_module(raw_dir: Path, function_name: str, framework: str) -> tuple[Path, Path, str]:
    """The program's own module among all the framework compiled (random-key, convert, broadcast helpers...).

    The program's module is named after its function (``jit_<fn>``, ``a_inference_<fn>_<id>__...``); among modules
    so named, or among all if none is, the one with the most instructions is the program.
    """
    modules = dumped_modules(raw_dir) if raw_dir.exists() else ()
    complete = [module for module in modules if module.before is not None and module.after is not None]
    if not complete:
        raise _CaptureFailed(f"{framework}: XLA wrote no module dumps; check that XLA_FLAGS reached the child "
                             "process (another XLA_FLAGS value may override --xla_dump_to)")
    named = tuple(module for module in complete if function_name and function_name in module.name)
    if framework == "torch_xla" and named:
        named = tuple(module for module in named if not module.helper) or named  # not its <name>_clear_pending
        # PyTorch/XLA compiles the step again on its second call (its scalars become cached device data, which
        # reorders the parameters); the child calls it twice and the last module is the one every later step runs.
        # The step itself: the fewest results (a recompile may return leftover intermediates), newest on a tie.
        chosen = min(named, key=lambda module: (result_arrays(module), -module.number))
    else:
        chosen = main_module(named or tuple(complete))
    assert chosen is not None and chosen.before is not None and chosen.after is not None
    return chosen.before, chosen.after, chosen.name


def _file_dump(target: Path, before: Path, after: Path, raw_dir: Path, pass_module: str | None,
               manifest: DumpManifest) -> DumpManifest:
    """Assembles the dump beside ``target`` and renames it into place; an existing dump is replaced last.

    Returns:
        The manifest as filed: with the count of pass dumps when there are some.
    """
    with assembled_folder(target) as partial:
        roots = source_roots()
        rewritten, used = 0, None
        for source, name in ((before, "before_optimizations.txt"), (after, "after_optimizations.txt")):
            text, root, count = portable_text(source.read_text(encoding="utf-8"), roots if used is None else [used])
            (partial / name).write_text(text, encoding="utf-8")
            used, rewritten = used or root, rewritten + count
        if used is not None:
            manifest = replace(manifest, source_root=used, source_paths_rewritten=rewritten)
        if pass_module is not None:
            passes = partial / "passes"
            passes.mkdir()
            prefix = before.name.split(".", 1)[0] + "." + pass_module + "."
            main_files = {before.name, after.name}
            for path in sorted(raw_dir.glob(prefix + "*.txt")):
                if path.name not in main_files and "buffer-assignment" not in path.name \
                        and "memory-usage" not in path.name and "live-range" not in path.name:
                    shutil.copyfile(path, passes / path.name)
            manifest = manifest.with_pass_dump_files(len(list(passes.iterdir())))
        manifest.write(partial / "manifest.json")
    return manifest
