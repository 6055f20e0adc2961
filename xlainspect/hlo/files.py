"""Finding HLO text files, and writing outputs so that an interrupted run never leaves a half-written file."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.errors import InputError
from xlainspect.hlo.dump_folder import dumped_modules, instruction_lines, main_module
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main_module_file(folder: str | os.PathLike[str]) -> Path:
    """The file to read for a folder: ``after_optimizations.txt`` of an ``xlainspect dump`` folder, else, in a
    folder XLA's ``--xla_dump_to`` wrote, the optimized module with the most instructions.

    A program's dump folder also holds the helper modules its framework compiled (``jit_convert_element_type``,
    ``jit_broadcast_in_dim``...), each a few instructions; the program's own step is the largest optimized one.

    Raises:
        InputError: the folder holds neither.
    """
    path = Path(folder)
    filed = path / "after_optimizations.txt"
    if filed.is_file():
        return filed

    chosen = main_module(dumped_modules(path))
    if chosen is not None:
        return chosen.file
    # Files renamed by hand, or by another tool: any optimized module, recognised by content.
    optimized = [p for p in sorted(path.glob("*after_optimizations*.txt")) if is_dumped_module(p)]
    if not optimized:
        raise InputError(f"{path}: no after_optimizations.txt here, nor XLA's *after_optimizations.txt modules; give "
                         "an HLO file, a folder 'xlainspect dump' filed, or one that --xla_dump_to wrote")
    return max(optimized, key=instruction_lines)


def hlo_module_at(path: str | os.PathLike[str], index: int = 0) -> HloModule:
    """Module ``index`` of an HLO file, or of a dump folder's main module (:func:`main_module_file`).

    Raises:
        InputError: no such file, or no module ``index`` in it.
        HloParseError: the text is not HLO.
    """
    from xlainspect.hlo.parse import read_hlo  # parse imports this module

    file = Path(path)
    if file.is_dir():
        file = main_module_file(file)
    if not file.is_file():
        raise InputError(f"{file}: no such file; give an HLO file or a dump folder")
    modules = read_hlo(file)
    if not 0 <= index < len(modules):
        raise InputError(f"{file}: has {len(modules)} module(s); --module must be 0 to {len(modules) - 1}")
    return modules[index]
