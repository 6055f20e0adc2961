"""Click parameter types of the ``xlainspect`` command: comma-separated lists and byte sizes, checked as they are parsed.

A value that is not one is a usage error (exit 2) naming the option and the item at fault, before any work starts, so
no command splits a comma list by hand or finds a bad item after minutes of compiling.
"""

from __future__ import annotations

from typing import Any

import click


class CommaList(click.ParamType):
    """``16,32,64`` or ``jax,tf``: items separated by commas, each converted and checked by ``item_type``.

    Converts to a tuple in the order given. An empty item (``16,,32``) or an item given twice is a usage error.

    Args:
        item_type: converts and checks one item, e.g. ``click.IntRange(min=1)`` or ``click.Choice(["jax", "tf"])``.
        metavar: what ``--help`` shows for the value, e.g. ``N,N,...``.
    """

    name = "comma-separated list"

    def __init__(self, item_type: click.ParamType, metavar: str) -> None:
        self.item_type = item_type
        self.metavar = metavar

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return self.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[Any, ...]:
        if isinstance(value, tuple):  # already converted: click converts a default given as a tuple again
            return value
        converted: list[Any] = []
        items = str(value).split(",")
        for item in items:
            text = item.strip()
            if not text:
                self.fail(f"{value!r} has an empty item; separate the values with single commas", param, ctx)
            try:
                result = self.item_type.convert(text, param, ctx)
            except click.BadParameter as e:
                self.fail(e.message if len(items) == 1 else f"{e.message.rstrip('.')} (in {value!r})", param, ctx)
            if result in converted:
                self.fail(f"{text!r} is given twice (in {value!r})", param, ctx)
            converted.append(result)
        return tuple(converted)


class ByteSize(click.ParamType):
    """A memory size: ``80GiB``, ``40GB``, ``512MiB`` or a number of bytes; converts to a positive ``int``."""

    name = "size"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from xlainspect.errors import InputError
        from xlainspect.measure.memory import parse_size

        try:
            size = parse_size(str(value))
        except InputError:
            self.fail(f"{value!r} is not a size; give one such as 80GiB, 40GB or 17179869184", param, ctx)
        if size <= 0:
            self.fail(f"{value!r} is no memory at all; give a positive size such as 80GiB", param, ctx)
        return size


class _PositiveInt(click.IntRange):
    name = "positive integer"  # click says "'x' is not a valid positive integer", not "... integer range"

    def __init__(self) -> None:
        super().__init__(min=1)


BATCH_SIZES = CommaList(_PositiveInt(), "N,N,...")
