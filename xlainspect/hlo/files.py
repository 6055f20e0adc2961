"""Finding HLO text files, and writing outputs so that an interrupted run never leaves a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.errors import InputError
from xlainspect.hlo.tokens import HLO_START_RE

if TYPE_CHECKING:
    from xlainspect.hlo.model import HloModule

_SNIFF_BYTES = 4096


def looks_like_hlo(path: Path) -> bool:
    """Whether a file starts like HLO text; XLA's dump folders also hold buffer assignments, LLVM IR and protos."""
    try:
        with path.open("rb") as file:
            head = file.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return HLO_START_RE.match(head) is not None


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
            found = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".hlo") and p.is_file()
                           and looks_like_hlo(p))
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def hlo_module_at(path: str | os.PathLike[str], index: int = 0) -> HloModule:
    """Module ``index`` of an HLO file, or of a dump folder's ``after_optimizations.txt``.

    Raises:
        InputError: no such file, or no module ``index`` in it.
        HloParseError: the text is not HLO.
    """
    from xlainspect.hlo.parse import read_hlo  # parse imports this module

    file = Path(path)
    if file.is_dir():
        file = file / "after_optimizations.txt"
    if not file.is_file():
        raise InputError(f"{file}: no such file; give an HLO file or a dump folder (with after_optimizations.txt)")
    modules = read_hlo(file)
    if not 0 <= index < len(modules):
        raise InputError(f"{file}: has {len(modules)} module(s); --module must be 0 to {len(modules) - 1}")
    return modules[index]
