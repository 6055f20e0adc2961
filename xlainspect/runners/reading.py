"""Reading records back: typed access to a JSON object's keys and a CSV row's columns.

Every record xlainspect writes (a child's result, ``time --json``, a manifest, a bench CSV) is read through
:class:`Fields` or :func:`read_csv`, so a missing key or column, or a value of the wrong type, is one
:class:`~xlainspect.errors.RecordError` line that names the file or child, the key, and what the source should have
been, never a ``KeyError`` or ``ValueError`` further on.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from xlainspect.errors import InputError, RecordError

T = TypeVar("T")

_REQUIRED: Any = object()
_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", type(None): "null"}


def _kind(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)


class Fields:
    """One JSON object being read into a record: each key taken by name and type, failures naming source and key.

    Args:
        data: the decoded JSON value that should be an object.
        source: the file or child it came from, first on every error line.
        hint: what the source should have been, last on every error line (e.g. "not the output of ...").
        path: where ``data`` sits in the document (``frameworks.jax``), "" for the top.
    """

    def __init__(self, data: Any, source: str, hint: str, path: str = "") -> None:
        self.source, self.hint, self.path = source, hint, path
        if not isinstance(data, dict):
            where = f"{path!r} is" if path else "it holds"
            raise RecordError(source, path, f"{where} {_kind(data)}, not a JSON object; {hint}")
        self.data: dict[str, Any] = data

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _odd(self, where: str, value: Any, expected: str) -> RecordError:
        return RecordError(self.source, where, f"{where!r} is {_kind(value)}, expected {expected}; {self.hint}")

    def _check(self, where: str, value: Any, kind: type, nullable: bool) -> Any:
        if value is None and nullable:
            return None
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise self._odd(where, value, _KIND_NAMES[kind] + (" or null" if nullable else ""))

    def get(self, key: str, kind: type, default: Any = _REQUIRED, nullable: bool = False) -> Any:
        """The value of ``key``, checked to be of ``kind`` (``float`` takes integers too); ``default`` when absent.

        Raises:
            RecordError: the key is absent and has no default, or holds another kind of value.
        """
        if key not in self.data:
            if default is _REQUIRED:
                raise RecordError(self.source, self._where(key), f"{self._where(key)!r} is missing; {self.hint}")
            return default
        return self._check(self._where(key), self.data[key], kind, nullable)

    def optional(self, key: str, kind: type) -> Any:
        """The value of ``key``, checked to be of ``kind``; None when it is absent or null."""
        return self.get(key, kind, None, nullable=True)

    def items(self, key: str, kind: type) -> tuple[Any, ...]:
        """The list under ``key``, each value checked to be of ``kind``, as a tuple."""
        return tuple(self._check(f"{self._where(key)}[{i}]", value, kind, False)
                     for i, value in enumerate(self.get(key, list)))

    def scalars(self, key: str) -> dict[str, Any]:
        """An object whose values are all strings, numbers, true/false or null, as a dict."""
        values = self.get(key, dict)
        for name, value in values.items():
            if not (value is None or isinstance(value, (str, int, float, bool))):
                raise self._odd(f"{self._where(key)}.{name}", value, "a string, a number, true/false or null")
        return dict(values)

    def record(self, key: str) -> Fields:
        """The object under ``key``, to read a nested record from."""
        return Fields(self.get(key, dict), self.source, self.hint, self._where(key))

    def records(self, key: str) -> list[Fields]:
        """The objects of the list under ``key``."""
        where = self._where(key)
        return [Fields(item, self.source, self.hint, f"{where}[{i}]") for i, item in enumerate(self.get(key, list))]

    def named_records(self, key: str) -> dict[str, Fields]:
        """The objects of the object under ``key``, by name."""
        where = self._where(key)
        return {name: Fields(item, self.source, self.hint, f"{where}.{name}")
                for name, item in self.get(key, dict).items()}


def write_json_file(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON in ``path``, the way every record file xlainspect writes looks."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(json.dumps(data, indent=2) + "\n")


def read_json_file(path: str | os.PathLike[str], hint: str) -> Any:
    """The JSON value in ``path``.

    Raises:
        InputError: the file cannot be read.
        RecordError: it holds no JSON (the line says where it stops being JSON, and ``hint``).
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RecordError(str(path), "", f"not a text file; {hint}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise RecordError(str(path), "", f"not JSON ({e}); {hint}") from None


_CELL_KINDS: dict[type, tuple[str, Callable[[str], Any]]] = {
    str: ("text", str),
    int: ("an integer", int),
    float: ("a number", float),
    bool: ("True or False", lambda text: {"True": True, "False": False, "1": True, "0": False}[text]),
}


class Cells:
    """One CSV row being read into a record: each column taken by name and converted; failures name file and line.

    Args:
        row: the row as :class:`csv.DictReader` gives it (None for a column the row is too short to hold).
        source: ``FILE:LINE``, first on every error line.
        hint: what the file should have been, last on every error line.
    """

    def __init__(self, row: dict[str, str | None], source: str, hint: str) -> None:
        self.row, self.source, self.hint = row, source, hint

    def get(self, column: str, kind: type, default: Any = _REQUIRED) -> Any:
        """The value in ``column`` converted to ``kind``; ``default`` when the file has no such column.

        Raises:
            RecordError: the row has no value there (and there is no default), or one that is not a ``kind``.
        """
        text = self.row.get(column)
        if text is None:
            if default is _REQUIRED or column in self.row:
                raise RecordError(self.source, column, f"no value in column {column!r}; {self.hint}")
            return default
        name, convert = _CELL_KINDS[kind]
        try:
            return convert(text)
        except (ValueError, KeyError):
            raise RecordError(self.source, column, f"column {column!r} holds {text!r}, expected {name}; "
                                                   f"{self.hint}") from None


def read_csv(path: str | os.PathLike[str], required: Sequence[str], parse: Callable[[Cells], T],
             hint: str) -> list[T]:
    """Every row of the CSV file at ``path``, each parsed into a record by ``parse``.

    Args:
        required: columns the header must have; others may be missing, for files older than those columns.

    Raises:
        InputError: the file cannot be read.
        RecordError: the header lacks a required column, or a row a value (the line says which).
    """
    try:
        with open(path, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames or []
            for column in required:
                if column not in header:
                    raise RecordError(str(path), column, f"no column {column!r} in the header; {hint}")
            return [parse(Cells(row, f"{path}:{reader.line_num}", hint)) for row in reader]
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise RecordError(str(path), "", f"not a CSV file ({e}); {hint}") from None
