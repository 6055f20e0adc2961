"""Finding HLO text files, and writing outputs so that an interrupted run never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.errors import InputError
from xlainspect.hlo.dump_folder import DumpedModule, dumped_modules, instruction_lines, main_module, pick_module
from xlainspect.hlo.tokens import HLO_START_RE, LEADING_COMMENTS, NAME

if TYPE_CHECKING:
    from xlainspect.hlo.model import HloModule

_SNIFF_BYTES = 4096
# XLA's side files beside each module in a dump folder: text, some starting like HLO (`HloLiveRange (max 5):`).
_SIDE_FILE_RE = re.compile(r"-(?:buffer-assignment(?:-values)?|live-range|memory-usage-report)\.txt$")
# How a module file XLA dumped starts, after comments: its header, an ENTRY, or a computation's full signature.
_DUMPED_MODULE_RE = re.compile(LEADING_COMMENTS + r"(?:HloModule\b|ENTRY\b|%?" + NAME + r"\s*\([^\n]*->)", re.S)


def _head(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            return file.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def looks_like_hlo(path: Path) -> bool:
    """Whether a file starts like HLO text; XLA's dump folders also hold buffer assignments, LLVM IR and protos."""
    head = _head(path)
    return head is not None and HLO_START_RE.match(head) is not None


def is_dumped_module(path: Path) -> bool:
    """Whether a file in a folder is an HLO module, recognised by name and content, not by trying to parse it.

    XLA's dump folders hold, beside each module's ``*.txt``, its buffer assignment, live ranges and memory report
    (also ``*.txt``, one starting ``HloLiveRange (...)``), ``debug_options``, object files, LLVM IR and MLIR folders.
    """
    if path.suffix not in (".txt", ".hlo") or _SIDE_FILE_RE.search(path.name) or not path.is_file():
        return False
    head = _head(path)
    return head is not None and _DUMPED_MODULE_RE.match(head) is not None


def hlo_files(paths: list[str]) -> list[Path]:
    """The HLO text files named by ``paths``: files as given, directories searched recursively, in sorted order.

    In a directory only ``*.txt`` and ``*.hlo`` files that start like HLO count, so an XLA dump folder can be given
    as it is.

    Raises:
        InputError: a path does not exist, or a directory holds no HLO text file.
    """
    result: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if is_dumped_module(p))
            if not found:
                raise InputError(f"{path}: no HLO text files (*.txt, *.hlo) in this directory; give a dump folder "
                                 "or an HLO file")
            result.extend(found)
        elif path.exists():
            result.append(path)
        else:
            raise InputError(f"{path}: no such file or directory; give an HLO text file or a folder of them")
    return result


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same folder and a rename.

    Raises:
        InputError: the folder does not exist or is not writable.
    """
    target = Path(path)
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.",
                                         suffix=".tmp")
    except OSError as e:
        raise InputError(f"{target}: cannot write here: {e.strerror}; check that the folder exists") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would have
        os.replace(temporary, target)
    except OSError as e:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write: {e.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def replace_folder(partial: Path, target: Path) -> None:
    """Moves a completely assembled folder ``partial`` (a sibling of ``target``) to ``target``, replacing what is there.

    An existing ``target`` is first renamed aside and deleted only once the new folder is in place, so ``target``
    always holds a complete folder: the old one or the new one.
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    os.replace(partial, target)
    if old is not None:
        shutil.rmtree(old)


@contextlib.contextmanager
def assembled_folder(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` to assemble a dump in; when the block ends it replaces ``target``
    (:func:`replace_folder`), and when the block fails it is deleted and ``target`` is left as it was.

    Interrupted or failed, a dump never leaves a half-written folder where the complete one belongs.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield partial
        replace_folder(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main_module_file(folder: str | os.PathLike[str]) -> Path:
    """The file to read for a folder: ``after_optimizations.txt`` of an ``xlainspect dump`` folder, else, in a
    folder XLA's ``--xla_dump_to`` wrote, its main module (:func:`~xlainspect.hlo.dump_folder.main_module`).

    Raises:
        InputError: the folder holds neither.
    """
    return module_location(folder)[0]


def _by_content(folder: Path) -> Path:
    """In a folder whose files were renamed by hand or by another tool: the optimized module with the most
    instructions, recognised by content.

    Raises:
        InputError: there is none.
    """
    optimized = [p for p in sorted(folder.glob("*after_optimizations*.txt")) if is_dumped_module(p)]
    if not optimized:
        raise InputError(f"{folder}: no after_optimizations.txt here, nor XLA's *after_optimizations.txt modules; "
                         "give an HLO file, a folder 'xlainspect dump' filed, or one that --xla_dump_to wrote")
    return max(optimized, key=instruction_lines)


def _file_modules(file: Path) -> tuple[DumpedModule, ...]:
    """The modules of one HLO file as a listing: position in the file, name, size, and the stage its header says
    (XLA marks an optimized module ``is_scheduled=true``)."""
    from xlainspect.hlo.parse import read_hlo  # parse imports this module

    modules = []
    for position, module in enumerate(read_hlo(file)):
        optimized = module.attributes.get("is_scheduled") == "true"
        modules.append(DumpedModule(position, module.name, None if optimized else file, file if optimized else None,
                                    sum(1 for _ in module.instructions())))
    return tuple(modules)


@dataclass(frozen=True)
class ModuleListing:
    """What ``stats --list`` shows for a path: its modules in order, and the one read when none is picked.

    Attributes:
        path: the folder or file listed.
        modules: a dump folder's modules in compile order, or a file's in file order.
        main: the module read by default: a raw dump folder's main one (:func:`~xlainspect.hlo.dump_folder.
            main_module`), the first of a file.
    """

    path: Path
    modules: tuple[DumpedModule, ...]
    main: DumpedModule | None


def list_modules(path: str | os.PathLike[str]) -> ModuleListing:
    """The modules a command could read at ``path``: a raw XLA dump folder's, or those of an HLO file (a folder
    ``xlainspect dump`` filed: its ``after_optimizations.txt``).

    Raises:
        InputError: no such path, or a folder with no module.
        HloParseError: a file is not HLO.
    """
    folder_or_file = Path(path)
    if folder_or_file.is_dir() and not (folder_or_file / _FILED).is_file():
        modules = dumped_modules(folder_or_file)
        if not modules:
            _by_content(folder_or_file)  # files renamed by hand: its error, else that XLA's modules are not there
            pick_module(modules, None, str(folder_or_file))
        return ModuleListing(folder_or_file, modules, main_module(modules))
    file = _filed_or_file(folder_or_file)
    modules = _file_modules(file)
    return ModuleListing(file, modules, modules[0] if modules else None)


def _filed_or_file(path: Path) -> Path:
    file = path / _FILED if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{file}: no such file; give an HLO file or a dump folder")
    return file


_FILED = "after_optimizations.txt"  # the module file of a folder 'xlainspect dump' filed


def module_location(path: str | os.PathLike[str], selector: str | int | None = None) -> tuple[Path, int]:
    """Which file to read for ``path`` and ``--module SELECTOR``, and which module of that file.

    Args:
        path: an HLO file, a folder ``xlainspect dump`` filed, or a folder XLA's ``--xla_dump_to`` wrote.
        selector: None for the default (a raw dump folder's main module, else the first module of the file), a
            position (in compile order in a dump folder, in the file otherwise; negative counts from the end), or a
            regular expression on module names that must match exactly one (:func:`~xlainspect.hlo.dump_folder.
            pick_module`).

    Raises:
        InputError: no such path, nothing to pick from, or a selector that picks no module or several.
    """
    folder_or_file = Path(path)
    selector = None if selector is None else str(selector)
    if folder_or_file.is_dir() and not (folder_or_file / _FILED).is_file():
        modules = dumped_modules(folder_or_file)
        if selector is None and main_module(modules) is None:
            return _by_content(folder_or_file), 0  # files renamed by hand
        return pick_module(modules, selector, str(folder_or_file)).file, 0
    file = _filed_or_file(folder_or_file)
    if selector is None:
        return file, 0
    return file, pick_module(_file_modules(file), selector, str(file)).number


def hlo_module_at(path: str | os.PathLike[str], selector: str | int | None = None) -> HloModule:
    """The module ``--module SELECTOR`` names at ``path`` (see :func:`module_location`).

    Raises:
        InputError: no such path, or no module the selector picks.
        HloParseError: the text is not HLO.
    """
    from xlainspect.hlo.parse import read_hlo  # parse imports this module

    file, index = module_location(path, selector)
    return read_hlo(file)[index]
