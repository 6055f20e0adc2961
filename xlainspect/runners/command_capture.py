"""Any command under XLA's own dumper: ``xlainspect dump -- python train.py``, filed with a manifest.

The command runs as the user would run it (their stdin, stdout and stderr, their environment), with XLA's dump flags
added to their own ``XLA_FLAGS``, so it works for any XLA front end (JAX, TF, PyTorch/XLA). A ``sitecustomize``
(:mod:`.version_probe`) first on its ``PYTHONPATH`` reports which frameworks each Python process imported.

Layout of the filed folder (default ``dumps/run/<stem>``, the stem of the command's script)::

    manifest.json                                           the command, versions, every module (CommandManifest)
    module_0004.jit_train_step.before_optimizations.txt     XLA's own file names, one pair per module
    module_0004.jit_train_step.cpu_after_optimizations.txt
    passes/                                                 with pass_dumps: each kept module after every pass

XLA writes into a hidden folder inside the folder being assembled (``.<name>.partial-*`` beside the destination);
the module files are moved out of it, XLA's side files (buffer assignments, object files...) are dropped, and the
folder is renamed into place only when complete. An existing destination is replaced only with ``force``, and only
if it is a folder this command filed (or an empty one), so ``--out . --force`` can never delete a working folder.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xlainspect import __version__
from xlainspect.errors import CommandError, HloParseError, InputError, RecordError
from xlainspect.hlo.dump_folder import DumpedModule, dumped_modules, main_module
from xlainspect.hlo.files import assembled_folder
from xlainspect.runners import version_probe
from xlainspect.runners.children import dump_flags
from xlainspect.runners.command_manifest import CommandManifest, CommandModule, xla_builds

RUN_FOLDER = Path("dumps") / "run"  # the default --out is RUN_FOLDER/<stem of the command's script>
_DUMP_TO_RE = re.compile(r'(?:^|\s)--xla_dump_to(?:=|\s+)(?:"[^"]*"|\S+)')
_HIDDEN_DUMP = ".xla_dump"  # XLA's folder inside the folder being assembled


@dataclass(frozen=True)
class CommandDump:
    """What ``dump_command`` filed.

    Attributes:
        directory: the filed folder.
        manifest: its manifest; ``manifest.exit_status`` is the command's status, which the CLI passes on.
        notes: lines to tell the user: the ``--xla_dump_to`` of their own ``XLA_FLAGS`` that was replaced, modules
            whose kernels could not be counted.
    """

    directory: Path
    manifest: CommandManifest
    notes: tuple[str, ...]


def default_out_dir(argv: Sequence[str]) -> Path:
    """``dumps/run/<stem>``: the stem of the first argument naming an existing file (``python train.py`` gives
    ``train``), else the last part of ``-m``'s module, else the command's own name."""
    stem = Path(argv[0]).stem
    for position, argument in enumerate(argv[1:], start=1):
        if argument == "-m" and position + 1 < len(argv):
            stem = argv[position + 1].rsplit(".", 1)[-1]
            break
        if not argument.startswith("-") and os.path.isfile(argument):
            stem = Path(argument).stem
            break
    return RUN_FOLDER / (re.sub(r"[^\w.-]", "_", stem).lstrip(".") or "command")


def merged_xla_flags(users: str, dump_dir: Path, pass_dumps: bool) -> tuple[str, str | None]:
    """The user's ``XLA_FLAGS`` with the dump flags added, and their own ``--xla_dump_to`` if it had one.

    Their other flags are kept as written (in order, quotes and all). Their ``--xla_dump_to`` is taken out, not
    merely outvoted by a later one, so where XLA writes never depends on which duplicate XLA's parser honours.
    """
    found = _DUMP_TO_RE.search(users)
    kept = _DUMP_TO_RE.sub("", users).strip()
    return f"{kept} {dump_flags(dump_dir, pass_dumps)}".strip(), found.group(0).strip() if found else None


def dump_command(argv: Sequence[str], out_dir: str | os.PathLike[str] | None = None, module: str | None = None,
                 force: bool = False, pass_dumps: bool = False,
                 progress: Callable[[str], None] | None = None, stdout_to_stderr: bool = False) -> CommandDump:
    """Runs ``argv`` with XLA's dumper on and files every module it compiled, with a manifest.

    A command that fails is still filed (what it compiled before failing): check ``manifest.exit_status``.

    Args:
        argv: the command and its arguments, run as they are (no shell).
        out_dir: the folder to file into; None for :func:`default_out_dir`.
        module: a regular expression; only modules whose name it matches (``re.search``) are filed.
        force: replace a folder this command filed before.
        pass_dumps: also keep each filed module after every XLA pass, under ``passes/``.
        progress: called with xlainspect's own lines (never the command's output).
        stdout_to_stderr: send the command's stdout to this process's stderr (so stdout holds only ``--json``).

    Raises:
        InputError: no command, a bad ``module`` expression, or a destination that exists without ``force`` (or is
            not a dump); nothing is run then.
        CommandError: no such command (exit code 127), or the command compiled nothing (or nothing ``module``
            matched); its exit code is the command's status when that failed.
    """
    if not argv:
        raise InputError("no command to run; give one after --, e.g. xlainspect dump -- python train.py")
    pattern = _module_pattern(module)
    target = Path(out_dir) if out_dir is not None else default_out_dir(argv)
    _check_destination(target, force)
    report = progress or (lambda line: None)
    with assembled_folder(target) as partial:
        raw = partial / _HIDDEN_DUMP
        flags, replaced = merged_xla_flags(os.environ.get("XLA_FLAGS", ""), raw, pass_dumps)
        notes = [f"your XLA_FLAGS' {replaced} is replaced for this run: XLA dumps to a temporary folder and the "
                 f"modules are filed in {target}"] if replaced else []
        for note in notes:
            report(note)
        report(f"running {shlex.join(argv)} with XLA's dumper on")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="xlainspect-probe-") as probe:
            status, processes = _run(argv, flags, Path(probe), stdout_to_stderr, report)
        duration = time.perf_counter() - started
        modules = dumped_modules(raw) if raw.is_dir() else ()
        kept = tuple(m for m in modules if pattern is None or pattern.search(m.name))
        if not kept:
            raise CommandError(_nothing_filed(argv, status, modules, module), status or 1)
        filed, counting_notes = _file_modules(partial, raw, kept, pass_dumps)
        notes += counting_notes
        interpreter, python_version, versions = _reported(processes)
        manifest = CommandManifest(
            command=tuple(argv), working_folder=os.getcwd(), interpreter=interpreter, python_version=python_version,
            versions=versions, xla=xla_builds(versions),
            backends=tuple(dict.fromkeys(m.backend for m in filed if m.backend is not None)), exit_status=status,
            xla_flags=flags.replace(str(raw), "<dump dir>"), module_filter=module, modules=filed,
            processes=len(processes),
            pass_dump_files=len(list((partial / "passes").iterdir())) if pass_dumps else None,
            duration_s=round(duration, 3),
            created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            xlainspect_version=__version__, regenerate=_regenerate(argv, target, module, pass_dumps))
        manifest.write(partial / "manifest.json")
        shutil.rmtree(raw)
    return CommandDump(target, manifest, tuple(notes))


def _module_pattern(module: str | None) -> re.Pattern[str] | None:
    if module is None:
        return None
    try:
        return re.compile(module)
    except re.error as e:
        raise InputError(f"--module {module!r}: not a regular expression ({e}); give one, e.g. 'train_step'") from e


def _check_destination(target: Path, force: bool) -> None:
    """Refuses a destination that exists, unless ``force`` and it is a command dump or an empty folder."""
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise InputError(f"{target}: a dump is already there; add --force to replace it, or choose another --out")
    if not target.is_dir() or target.is_symlink():
        raise InputError(f"{target}: not a folder; choose another --out")
    if not any(target.iterdir()):
        return
    try:
        CommandManifest.read(target / "manifest.json")
    except (InputError, RecordError):
        raise InputError(f"{target}: not a folder 'xlainspect dump -- CMD' filed (no manifest.json of one), so "
                         "--force does not replace it; choose another --out") from None


def _run(argv: Sequence[str], xla_flags: str, probe: Path, stdout_to_stderr: bool,
         report: Callable[[str], None]) -> tuple[int, list[dict]]:
    """Runs the command with the dump flags and the version probe; its status (as a shell gives it) and the
    probe's lines, one per Python process that exited normally."""
    shutil.copyfile(version_probe.__file__, probe / "sitecustomize.py")
    versions_file = probe / "versions.jsonl"
    env = dict(os.environ, XLA_FLAGS=xla_flags, **{version_probe.VERSIONS_FILE_ENV: str(versions_file)})
    env["PYTHONPATH"] = os.pathsep.join([str(probe), *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        child = subprocess.Popen(list(argv), env=env, stdout=2 if stdout_to_stderr else None)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]}: command not found; give a program on PATH or a path to one", 127) from None
    except PermissionError:
        raise CommandError(f"{argv[0]}: not executable; check its permissions, or run it with its interpreter "
                           f"(e.g. python {argv[0]})", 126) from None
    returncode = _wait(child, report)
    lines = versions_file.read_text(encoding="utf-8").splitlines() if versions_file.exists() else []
    processes = []
    for line in lines:
        try:
            processes.append(json.loads(line))
        except ValueError:  # a process killed while writing its line; the others still count
            continue
    return (128 - returncode if returncode < 0 else returncode), processes


def _wait(child: subprocess.Popen, report: Callable[[str], None]) -> int:
    """Waits for the command; Ctrl-C reaches it from the terminal (same process group), so the first one only says
    what happens, a second kills the command, and a SIGTERM to xlainspect is passed on."""
    if threading.current_thread() is not threading.main_thread():
        return child.wait()
    interrupts = 0

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            report("interrupted: waiting for the command to stop, then filing what it compiled (Ctrl-C again to "
                   "kill it)")
        elif child.poll() is None:
            child.kill()

    def on_terminate(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt), signal.signal(signal.SIGTERM, on_terminate)
    try:
        return child.wait()
    finally:
        # getsignal's None: a handler installed outside Python, which cannot be put back; the default is closest.
        signal.signal(signal.SIGINT, previous[0] if previous[0] is not None else signal.SIG_DFL)
        signal.signal(signal.SIGTERM, previous[1] if previous[1] is not None else signal.SIG_DFL)


def _reported(processes: list[dict]) -> tuple[str | None, str | None, dict[str, str]]:
    """The interpreter and versions the probe reported: the first process that imported a framework (else the
    first Python at all), and the versions every process found (the first report of each package)."""
    valid = [p for p in processes if isinstance(p, dict) and isinstance(p.get("versions"), dict)]
    versions: dict[str, str] = {}
    for process in valid:
        for name, version in process["versions"].items():
            if isinstance(version, str):
                versions.setdefault(name, version)
    chosen = next((p for p in valid if p["versions"]), valid[0] if valid else None)
    if chosen is None:
        return None, None, versions
    return (str(chosen.get("python")) if chosen.get("python") else None,
            str(chosen.get("python_version")) if chosen.get("python_version") else None, versions)


def _nothing_filed(argv: Sequence[str], status: int, modules: tuple[DumpedModule, ...], module: str | None) -> str:
    command = shlex.join(argv)
    ended = f"failed (exit {status})" if status else "exited 0"
    if modules:
        largest = sorted(modules, key=lambda m: -m.instructions)
        names = list(dict.fromkeys(m.name for m in largest))
        return (f"{command} {ended}; no module name matches --module {module!r}, nothing filed; it compiled "
                f"{len(modules)} module(s), the largest first: {', '.join(names[:8])}{'...' if len(names) > 8 else ''}")
    return (f"{command} {ended} and compiled nothing with XLA: no module was dumped, nothing filed (does it use "
            "jax.jit, tf.function(jit_compile=True) or torch_xla? a warm compilation cache compiles nothing)")


def _file_modules(partial: Path, raw: Path, kept: tuple[DumpedModule, ...],
                  pass_dumps: bool) -> tuple[tuple[CommandModule, ...], list[str]]:
    """Moves the kept modules' files (and their pass dumps) out of XLA's folder; their records and any notes."""
    from xlainspect.analysis.census import census
    from xlainspect.analysis.passes import parse_pass_dump_name
    from xlainspect.hlo import read_hlo

    main = main_module(kept)
    records, notes = [], []
    for item in kept:
        for path in (item.before, item.after):
            if path is not None:
                os.replace(path, partial / path.name)
        kernels = None
        if item.after is not None:
            try:
                kernels = census(read_hlo(partial / item.after.name)[0]).kernel_count
            except HloParseError as e:
                notes.append(f"{item.name}: kernels not counted, the module did not parse ({e})")
        records.append(CommandModule(item.number, item.name, item.backend, item.instructions, kernels, item is main,
                                     item.before.name if item.before else None,
                                     item.after.name if item.after else None))
    if pass_dumps:
        (partial / "passes").mkdir()
        numbers = {item.number for item in kept}
        for path in raw.iterdir():
            name = parse_pass_dump_name(path.name)
            if name is not None and name.module_number in numbers and path.is_file():
                os.replace(path, partial / "passes" / path.name)
    return tuple(records), notes


def _regenerate(argv: Sequence[str], target: Path, module: str | None, pass_dumps: bool) -> str:
    parts = ["xlainspect", "dump", "--out", str(target)]
    if module is not None:
        parts += ["--module", module]
    if pass_dumps:
        parts.append("--pass-dumps")
    return shlex.join(parts + ["--force", "--", *argv])
