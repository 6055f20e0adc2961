"""Where HLO instructions came from: ``metadata={...}`` and the stack-frame tables JAX writes after the module header.

JAX's optimized modules start with ``FileNames``, ``FunctionNames``, ``FileLocations`` and ``StackFrames`` tables,
and an instruction's metadata then says ``stack_frame_id=N`` instead of spelling file and line; TF's metadata says
``source_file=... source_line=...``. This module turns either into :class:`SourceLocation` values. Decoding is
cached by metadata text and frame id: unrolled layers repeat the same few thousand texts hundreds of times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from xlainspect.hlo.attributes import parse_key_values, unquote


@dataclass(frozen=True)
class SourceLocation:
    """Where in framework source code an HLO instruction came from."""

    file: str
    line: int
    function: str = ""
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class StackFrames:
    """The ``FileNames``/``FunctionNames``/``FileLocations``/``StackFrames`` tables of a JAX-written module.

    Metadata then refers to a frame by ``stack_frame_id`` instead of spelling file and line on every instruction.
    """

    file_names: Mapping[int, str] = field(default_factory=dict)
    function_names: Mapping[int, str] = field(default_factory=dict)
    file_locations: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    frames: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # id -> (file_location_id, parent id or 0)
    # Metadata parsed so far, by its text: unrolled layers repeat the same op names and frames thousands of times.
    metadata_cache: dict[str, OpMetadata] = field(default_factory=dict, repr=False, compare=False)
    stack_cache: dict[int, tuple[SourceLocation, ...]] = field(default_factory=dict, repr=False, compare=False)

    def location(self, frame_id: int) -> SourceLocation | None:
        """The innermost source location of a frame, or None if the tables do not resolve it."""
        frame = self.frames.get(frame_id)
        if frame is None:
            return None
        loc = self.file_locations.get(frame[0])
        if loc is None:
            return None
        return SourceLocation(
            file=self.file_names.get(loc.get("file_name_id", 0), ""),
            line=loc.get("line", 0),
            function=self.function_names.get(loc.get("function_name_id", 0), ""),
            column=loc.get("column", 0),
            end_line=loc.get("end_line", 0),
            end_column=loc.get("end_column", 0),
        )

    def stack(self, frame_id: int) -> tuple[SourceLocation, ...]:
        """The call stack of a frame, innermost first; stops at a cycle or an unresolvable frame."""
        known = self.stack_cache.get(frame_id)
        if known is None:
            known = self.stack_cache[frame_id] = self._stack(frame_id)
        return known

    def _stack(self, frame_id: int) -> tuple[SourceLocation, ...]:
        result: list[SourceLocation] = []
        seen: set[int] = set()
        while frame_id and frame_id not in seen:
            seen.add(frame_id)
            location = self.location(frame_id)
            if location is None:
                break
            result.append(location)
            frame_id = self.frames[frame_id][1]
        return tuple(result)


@dataclass(frozen=True)
class OpMetadata:
    """An instruction's ``metadata={...}``: the framework op it came from and where in the source.

    Attributes:
        op_type: the framework op type (TF's ``MatMul``, JAX's primitive in some versions), or "".
        op_name: the framework's op path, e.g. ``jit(f)/jvp()/dot_general``, or "".
        source: the innermost source location, from ``source_file``/``source_line`` or resolved through the
            module's stack-frame tables; None when the metadata names none.
        stack: the full call stack when the module has stack-frame tables, innermost first.
        fields: every key of the metadata with its value as text (quotes removed).
    """

    op_type: str = ""
    op_name: str = ""
    source: SourceLocation | None = None
    stack: tuple[SourceLocation, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def user_source(self) -> SourceLocation | None:
        """The innermost location in the user's code: frames inside an installed framework (TF's ``ops.py:1221``
        on every TF op) or Python's standard library are skipped; None when no frame is the user's."""
        for location in self.stack or ((self.source,) if self.source is not None else ()):
            if not is_framework_file(location.file):
                return location
        return None


# A file inside an installed package of one of these, or in Python's standard library, is not the user's code.
FRAMEWORK_PACKAGES = frozenset({"tensorflow", "tf_keras", "keras", "jax", "jaxlib", "flax", "optax", "haiku",
                                "equinox", "torch", "torch_xla", "opacus", "numpy", "absl"})
_INSTALLED_RE = re.compile(r"[/\\](?:site|dist)-packages[/\\]([^/\\]+)")
_STDLIB_RE = re.compile(r"[/\\]lib[/\\]python3\.\d+[/\\](?!(?:site|dist)-packages)")


def is_framework_file(path: str) -> bool:
    """Whether a source path lies inside an installed framework package or Python's standard library."""
    installed = _INSTALLED_RE.search(path)
    if installed is not None:
        return installed.group(1).split(".")[0] in FRAMEWORK_PACKAGES
    return _STDLIB_RE.search(path) is not None


NO_FRAMES = StackFrames()  # the tables of a module that has none


_METADATA_CACHE_LIMIT = 200_000


def metadata_from_text(text: str, frames: StackFrames) -> OpMetadata:
    cache = frames.metadata_cache
    known = cache.get(text)
    if known is not None:
        return known
    if len(cache) >= _METADATA_CACHE_LIMIT:  # the shared empty StackFrames serves every module without tables
        cache.clear()
    cache[text] = metadata = _parse_metadata(text, frames)
    return metadata


def _parse_metadata(text: str, frames: StackFrames) -> OpMetadata:
    fields = parse_key_values(text)
    source: SourceLocation | None = None
    stack: tuple[SourceLocation, ...] = ()
    frame_id = _to_int(fields.get("stack_frame_id"))
    if frame_id:
        stack = frames.stack(frame_id)
        source = stack[0] if stack else None
    if source is None and "source_file" in fields:
        source = SourceLocation(
            file=fields["source_file"],
            line=_to_int(fields.get("source_line")),
            column=_to_int(fields.get("source_column")),
            end_line=_to_int(fields.get("source_end_line")),
            end_column=_to_int(fields.get("source_end_column")),
        )
    return OpMetadata(fields.get("op_type", ""), fields.get("op_name", ""), source, stack, fields)


def _to_int(text: str | None) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


def stack_frames_from_tables(tables: Mapping[str, Mapping[int, str]]) -> StackFrames:
    """Builds :class:`StackFrames` from the rows of the four tables as the parser read them (row id -> row text)."""
    def numbers(text: str) -> dict[str, int]:
        return {key: int(value) for key, value in parse_key_values(text).items() if value.lstrip("-").isdigit()}

    locations = {key: numbers(value) for key, value in tables.get("FileLocations", {}).items()}
    frames = {}
    for key, value in tables.get("StackFrames", {}).items():
        fields = numbers(value)
        # XLA prints a frame's parent as its id + 1, so 1 means "no parent" (checked against JAX's output).
        frames[key] = (fields.get("file_location_id", 0), max(fields.get("parent_frame_id", 0) - 1, 0))
    return StackFrames(
        file_names={key: unquote(value) for key, value in tables.get("FileNames", {}).items()},
        function_names={key: unquote(value) for key, value in tables.get("FunctionNames", {}).items()},
        file_locations=locations,
        frames=frames,
    )
