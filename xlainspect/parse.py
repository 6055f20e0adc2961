"""Parsing HLO text into :class:`~xlainspect.hlo.HloModule` values.

The grammar is XLA's (``xla/hlo/parser``): optional ``HloModule name, attr=value...`` header, optional stack-frame
tables, then computations ``[ENTRY] name [(params) -> shape] { instructions } [, execution_thread="..."]``, each
instruction ``[ROOT] name = [shape] opcode(operands), attr=value, ...``. Whitespace and comments are free between
tokens, so statements may span lines.

Speed matters (optimized modules run to tens of megabytes), so whole tokens are matched by compiled regular
expressions: balanced brackets up to a fixed depth in one match, with a character scanner as the fallback for deeper
nesting. Python code runs once per instruction and attribute, not once per character.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from xlainspect.async_wrappers import with_async_wrappers
from xlainspect.attributes import parse_called_names, parse_key_values, unquote
from xlainspect.errors import HloParseError, InputError
from xlainspect.hlo import Computation, HloModule, Instruction, StackFrames, make_instruction
from xlainspect.opcodes import SAME_SHAPE_AS_OPERAND, async_wrapped_opcode
from xlainspect.shape import SHAPE_CACHE, Shape, ShapeSyntaxError, parse_shape
from xlainspect.tokens import (
    CALL_ROLE_SET,
    ARRAY_SHAPE,
    ARRAY_SHAPE_RE,
    ARROW_SHAPE_RE,
    ATTRIBUTE_KEY_RE,
    ATTRIBUTE_RE,
    COMPUTATION_RE,
    EXECUTION_THREAD_RE,
    GROUP_RE,
    INSTRUCTION_HEAD_RE,
    INSTRUCTION_NAME_RE,
    INSTRUCTION_RE,
    MODULE_RE,
    NAME,
    OPERAND_LIST_RE,
    OPERAND_NAMES_RE,
    OPCODE_RE,
    OPERAND_SPLIT_RE,
    STRING_RE,
    TABLE_RE,
    TABLE_ROW_RE,
    VALUE_RE,
    WS_RE,
    blank_comments,
    bracket_counts_differ,
    first_bracket_mismatch,
    split_chunks,
)


def parse_hlo(text: str, path: str = "<string>") -> HloModule:
    """Parses the text of one HLO module, as XLA writes it in dumps or as it appears in XLA's tests.

    Args:
        text: HLO text: a module with ``HloModule`` header, or bare computations (the last, or the one marked
            ``ENTRY``, is the entry).
        path: what to call the text in error messages.

    Raises:
        HloParseError: the text is not valid HLO, or holds more or fewer than one module (use :func:`read_hlo`
            or :func:`parse_hlo_modules` for files that hold several).
    """
    modules = parse_hlo_modules(text, path)
    if len(modules) != 1:
        raise HloParseError(path, 1, 1, f"expected one HLO module, found {len(modules)}; use read_hlo() for files "
                                        "that hold several")
    return modules[0]


def parse_hlo_modules(text: str, path: str = "<string>") -> list[HloModule]:
    """Parses every module in ``text``: modules are separated by ``// -----`` lines or by new ``HloModule`` headers.

    Raises:
        HloParseError: any module is invalid, or the text holds none.
    """
    chunks = split_chunks(text)
    clean = blank_comments(text)
    modules: list[HloModule] = []
    # Parsing builds a few objects per instruction and no reference cycles; CPython's cyclic collector would
    # otherwise rescan the growing heap again and again, a third of the time on a large module.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for start, end in chunks:
            chunk = clean[start:end] if (start, end) != (0, len(text)) else clean
            parser = _Parser(chunk, path, text.count("\n", 0, start))
            try:
                modules.extend(parser.modules(first_index=len(modules)))
            except HloParseError as e:
                # The fast patterns let any bracket close any other; a mismatch explains most errors best.
                raise parser.bracket_error() or e from None
            if bracket_counts_differ(chunk):
                error = parser.bracket_error()
                if error is not None:
                    raise error
    finally:
        if collecting:
            gc.enable()
    if not modules:
        raise HloParseError(path, 1, 1, "no HLO module or computation found")
    return modules


def read_hlo(path: str | os.PathLike[str]) -> list[HloModule]:
    """Reads every HLO module in a text file (XLA dumps hold one; XLA's test files may hold several).

    Raises:
        InputError: the path is missing, a directory, unreadable, or not UTF-8 text.
        HloParseError: the text is not valid HLO.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{file}: no such file; give the path of an HLO text file") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a directory; give an HLO text file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{file}: not UTF-8 text (byte {e.start}); is this an HLO text dump?") from None
    except OSError as e:
        raise InputError(f"{file}: cannot read: {e.strerror}") from None
    return parse_hlo_modules(text, str(file))


class _Parser:
    """Parses the modules of one chunk of text; holds the position and error context."""

    def __init__(self, text: str, path: str, line_offset: int) -> None:
        self.text = text
        self.path = path
        self.line_offset = line_offset
        self.callers: list[Instruction] = []  # instructions of the current module with call attributes
        self.opcodes_seen: set[str] = set()  # opcodes of the current module
        self._line_mark = (0, 1 + line_offset)  # (offset, its line): line numbers are counted forward from here

    def line_at(self, pos: int) -> int:
        """The file-relative line of ``pos``, counting only the text since the last position asked about."""
        mark, line = self._line_mark
        if pos >= mark:
            line += self.text.count("\n", mark, pos)
        else:
            line = self.text.count("\n", 0, pos) + 1 + self.line_offset
        self._line_mark = (pos, line)
        return line

    # -- errors -----------------------------------------------------------------------------------------------

    def error(self, pos: int, message: str) -> HloParseError:
        text = self.text
        pos = min(max(pos, 0), len(text))
        line = text.count("\n", 0, pos) + 1 + self.line_offset
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return HloParseError(self.path, line, column, message)

    def found(self, pos: int) -> str:
        """What stands at ``pos``, for "expected X, found Y" messages."""
        snippet = self.text[pos:pos + 20].split("\n", 1)[0].strip()
        return f"found {snippet!r}" if snippet else "found end of line" if pos < len(self.text) else "found end of text"

    def bracket_error(self) -> HloParseError | None:
        """An error for the first mismatched bracket of the chunk, if any."""
        mismatch = first_bracket_mismatch(self.text, self.line_offset)
        return None if mismatch is None else self.error(*mismatch)

    def skip_ws(self, pos: int) -> int:
        return WS_RE.match(self.text, pos).end()

    # -- module level -----------------------------------------------------------------------------------------

    def modules(self, first_index: int) -> Iterator[HloModule]:
        text = self.text
        pos = self.skip_ws(0)
        index = first_index
        while pos < len(text):
            module, pos = self.module(pos, index)
            yield module
            index += 1
            pos = self.skip_ws(pos)

    def module(self, pos: int, index: int) -> tuple[HloModule, int]:
        text = self.text
        name = ""
        attributes: dict[str, str] = {}
        header = MODULE_RE.match(text, pos)
        if header is not None:
            name = header.group(1)
            attributes, pos = self.attributes(header.end())
        elif text.startswith("HloModule", pos):
            raise self.error(pos + 9, "expected a module name after 'HloModule'")
        frames, pos = self.stack_frames(self.skip_ws(pos))
        self.callers = []
        self.opcodes_seen = set()
        computations: list[Computation] = []
        entry_name = ""
        pos = self.skip_ws(pos)
        while pos < len(text) and not text.startswith("HloModule", pos):
            start = pos
            computation, pos = self.computation(pos, frames)
            if computation.is_entry:
                if entry_name:
                    raise self.error(start, f"second ENTRY computation {computation.name!r}; a module has one entry")
                entry_name = computation.name
            computations.append(computation)
            pos = self.skip_ws(pos)
        if not computations:
            raise self.error(pos, "expected a computation after the module header")
        if not entry_name:  # XLA's rule: without ENTRY, the last computation is the entry
            computations[-1] = replace(computations[-1], is_entry=True)
            entry_name = computations[-1].name
        if any(async_wrapped_opcode(opcode) for opcode in self.opcodes_seen if opcode.endswith("-start")):
            computations = with_async_wrappers(computations)
        # XLA names a module without a header after its entry computation.
        module = HloModule(name or f"module_{entry_name}", attributes, tuple(computations), entry_name, frames,
                           self.path, index)
        self.check_calls(module)
        return module, pos

    def attributes(self, pos: int) -> tuple[dict[str, str], int]:
        """Reads ``, key=value`` pairs from ``pos``; stops at the first text that is not one."""
        text = self.text
        attributes: dict[str, str] = {}
        while (key_match := ATTRIBUTE_KEY_RE.match(text, pos)) is not None:
            value_start = key_match.end()
            value = VALUE_RE.match(text, value_start)
            end = value.end() if value is not None else value_start
            if end == value_start or (end < len(text) and text[end] in "{[(\"'"):
                end = self.value_end_slow(value_start)  # nested deeper than the fast pattern, or malformed
            if end == value_start:
                break
            key = key_match.group(1)
            if key in attributes:
                raise self.error(key_match.start(1), f"attribute {key!r} given twice")
            attributes[key] = text[value_start:end]
            pos = end
        comma = self.skip_ws(pos)
        if text.startswith(",", comma):
            raise self.error(self.skip_ws(comma + 1), "expected an attribute 'name=value' after ','")
        return attributes, pos

    def value_end_slow(self, pos: int) -> int:
        """End of an attribute value nested deeper than the fast pattern handles, or with unbalanced brackets."""
        text = self.text
        while pos < len(text) and not text[pos].isspace() and text[pos] not in ",)}]":
            if text[pos] in "{[(\"'":
                pos = self.group_end(pos)
            else:
                pos += 1
        return pos

    def group_end(self, pos: int) -> int:
        """End (exclusive) of the bracket group or string literal opening at ``pos``."""
        text = self.text
        if text[pos] in "\"'":
            match = STRING_RE.match(text, pos)
            if match is None:
                raise self.error(pos, "unterminated string literal; close it with a matching quote")
            return match.end()
        match = GROUP_RE.match(text, pos)
        if match is not None:
            return match.end()
        return self.group_end_slow(pos)

    def group_end_slow(self, pos: int) -> int:
        text = self.text
        closers = {"{": "}", "[": "]", "(": ")"}
        stack: list[str] = []
        i = pos
        n = len(text)
        while i < n:
            c = text[i]
            if c in closers:
                stack.append(closers[c])
            elif c in "}])":
                if not stack or c != stack[-1]:
                    expected = f"{stack[-1]!r}" if stack else "no closing bracket"
                    raise self.error(i, f"unbalanced brackets: found {c!r} where {expected} was expected")
                stack.pop()
                if not stack:
                    return i + 1
            elif c in "\"'":
                i = self.group_end(i)
                continue
            i += 1
        raise self.error(pos, f"unbalanced brackets: {text[pos]!r} is never closed; add {''.join(reversed(stack))!r}")

    def stack_frames(self, pos: int) -> tuple[StackFrames, int]:
        text = self.text
        tables: dict[str, dict[int, str]] = {}
        while (table := TABLE_RE.match(text, pos)) is not None:
            keyword = table.group(1)
            if keyword in tables:
                raise self.error(pos, f"{keyword} table given twice")
            rows: dict[int, str] = {}
            pos = table.end()
            while (row := TABLE_ROW_RE.match(text, pos)) is not None:
                rows[int(row.group(1))] = row.group(2)
                pos = row.end()
            tables[keyword] = rows
            pos = self.skip_ws(pos)
        if not tables:
            return StackFrames(), pos
        return self.make_frames(tables), pos

    @staticmethod
    def make_frames(tables: dict[str, dict[int, str]]) -> StackFrames:
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

    # -- computations -----------------------------------------------------------------------------------------

    def computation(self, pos: int, frames: StackFrames) -> tuple[Computation, int]:
        text = self.text
        head = COMPUTATION_RE.match(text, pos)
        if head is None:
            raise self.error(pos, f"expected a computation 'name {{' or 'ENTRY name {{', {self.found(pos)}")
        is_entry = head.group(1) is not None
        name = head.group(2)
        header_line = self.line_at(pos)
        pos = head.end()
        signature = ""
        if text.startswith("(", pos):
            params_end = self.group_end(pos)
            arrow = ARROW_SHAPE_RE.match(text, params_end)
            if arrow is None:
                raise self.error(self.skip_ws(params_end),
                                 f"expected '-> shape {{' after the parameter list of computation {name!r}")
            signature = text[pos:params_end].strip() + " -> " + arrow.group(1)
            pos = arrow.end()
        elif text.startswith("{", pos):
            pos += 1
        else:
            raise self.error(pos, f"expected '{{' or a parameter list after computation name {name!r}, "
                                  f"{self.found(pos)}")
        instructions, pos = self.instructions(pos, name, frames)
        thread = ""
        match = EXECUTION_THREAD_RE.match(text, pos)
        if match is not None:
            thread = unquote(match.group(1))
            pos = match.end()
        return Computation(name, instructions, is_entry, signature, thread, header_line), pos

    def instructions(self, pos: int, computation: str, frames: StackFrames) -> tuple[tuple[Instruction, ...], int]:
        """Reads instructions up to and including the computation's closing brace."""
        text = self.text
        n = len(text)
        by_name: dict[str, Instruction] = {}
        ordered: list[Instruction] = []
        root: Instruction | None = None
        line = self.line_at(pos)
        line_pos = pos
        match_instruction = INSTRUCTION_RE.match
        match_ws = WS_RE.match
        attribute_pairs = ATTRIBUTE_RE.findall
        operand_names = OPERAND_NAMES_RE.findall
        make = make_instruction
        shape_cache = SHAPE_CACHE
        call_roles = CALL_ROLE_SET
        callers = self.callers
        opcodes_seen = self.opcodes_seen
        while True:
            if text.startswith("}", pos) or (pos < n and text[pos].isspace() and
                                             text.startswith("}", pos := match_ws(text, pos).end())):
                pos += 1
                break
            if pos >= n:
                raise self.error(pos, f"computation {computation!r} is not closed; add '}}'")
            match = match_instruction(text, pos)
            if match is not None:
                is_root, name, array_shape, tuple_shape, opcode, operand_list, inner, attribute_text = match.groups()
                start = match.start(1) if is_root else match.start(2)
                line += text.count("\n", line_pos, start)
                line_pos = start
                shape_text = array_shape or tuple_shape
                if attribute_text:
                    pairs = attribute_pairs(attribute_text)
                    attributes = dict(pairs)
                    if len(attributes) != len(pairs):
                        attributes, _ = self.attributes(match.start(8))  # reports the repeated attribute
                else:
                    attributes = {}
                pos = match.end()
            else:
                pos = match_ws(text, pos).end()
                line += text.count("\n", line_pos, pos)
                line_pos = pos
                is_root, name, shape_text, opcode, inner, attributes, pos = self.instruction_slow(pos)
                operand_list = None
            if name in by_name:
                raise self.error(line_pos, f"instruction {name!r} defined twice in computation {computation!r}")
            literal = None
            parameter_number = None
            if operand_list is not None and opcode != "constant" and opcode != "parameter":
                operands = tuple(operand_names(operand_list)) if operand_list else ()
            elif opcode == "parameter":
                number_text = inner if inner is not None else operand_list
                try:
                    parameter_number = int(number_text)
                except ValueError:
                    raise self.error(self.operands_pos(line_pos),
                                     f"expected a parameter number in parameter({number_text.strip()})") from None
                operands: tuple[str, ...] = ()
            elif opcode == "constant":
                literal = (inner if inner is not None else operand_list).strip()
                operands = ()
            else:
                operands = self.operand_names(inner or "", line_pos)
            if shape_text is not None:
                shape = shape_cache.get(shape_text) or self.shape(shape_text, line_pos)
            else:
                shape = self.infer_shape(opcode, operands, attributes, by_name, line_pos)
            instruction = make(name, opcode, shape, operands, attributes, computation, is_root is not None, line,
                               literal, parameter_number, frames)
            if is_root is not None:
                if root is not None:
                    raise self.error(line_pos, f"second ROOT in computation {computation!r} "
                                               f"(first: {root.name!r}); a computation has one root")
                root = instruction
            by_name[name] = instruction
            ordered.append(instruction)
            opcodes_seen.add(opcode)
            for key in attributes:
                if key in call_roles:
                    callers.append(instruction)
                    break
        if not ordered:
            raise self.error(pos - 1, f"computation {computation!r} has no instructions")
        if root is None:  # XLA's rule: without ROOT, the last instruction is the root
            ordered[-1] = replace(ordered[-1], is_root=True)
        self.check_operands(ordered, by_name, computation)
        self._line_mark = (line_pos, line)
        return tuple(ordered), pos

    def instruction_slow(self, pos: int) -> tuple:
        """Reads one instruction piece by piece: for nesting deeper than the fast pattern, and precise errors."""
        text = self.text
        head = INSTRUCTION_NAME_RE.match(text, pos)
        if head is None:
            raise self.instruction_error(pos)
        is_root, name = head.groups()
        pos = head.end()
        shape_text = None
        if text.startswith("(", pos):
            end = self.group_end(pos)
            shape_text = text[pos:end]
            pos = self.skip_ws(end)
        elif (array := ARRAY_SHAPE_RE.match(text, pos)) is not None:
            shape_text = array.group()
            pos = self.skip_ws(array.end())
        opcode_match = OPCODE_RE.match(text, pos)
        if opcode_match is None:
            raise self.instruction_error(head.start())
        opcode = opcode_match.group(1)
        operands_start = opcode_match.end()
        operands_end = self.group_end(operands_start)
        attributes, end = self.attributes(operands_end)
        inner = text[operands_start + 1:operands_end - 1]
        return is_root, name, shape_text, opcode, inner, attributes, end

    def operands_pos(self, instruction_pos: int) -> int:
        """Offset just inside the operand list of the instruction at ``instruction_pos`` (for error messages)."""
        head = INSTRUCTION_HEAD_RE.match(self.text, instruction_pos)
        return instruction_pos if head is None else head.end() + 1

    def instruction_error(self, pos: int) -> HloParseError:
        """The most specific message for text where an instruction should start."""
        text = self.text
        name = re.compile(r"(ROOT\s+)?%?(" + NAME + r")\s*").match(text, pos)
        if name is None:
            return self.error(pos, f"expected an instruction 'name = shape opcode(...)' or '}}', {self.found(pos)}")
        pos = name.end()
        if not text.startswith("=", pos):
            return self.error(pos, f"expected '=' after instruction name {name.group(2)!r}, {self.found(pos)}")
        pos = self.skip_ws(pos + 1)
        try:
            if text.startswith("(", pos):
                pos = self.group_end(pos)
            elif (array := re.compile(ARRAY_SHAPE).match(text, pos)) is not None:
                pos = array.end()
        except HloParseError as e:
            return e
        pos = self.skip_ws(pos)
        if re.compile(r"[a-z][a-z0-9\-]*\s*\(").match(text, pos) is None:
            return self.error(pos, f"expected a shape and an opcode followed by '(', {self.found(pos)}")
        return self.error(pos, f"malformed instruction, {self.found(pos)}")

    def operand_names(self, inner: str, instruction_pos: int) -> tuple[str, ...]:
        if OPERAND_LIST_RE.fullmatch(inner) is not None:
            return tuple(OPERAND_NAMES_RE.findall(inner))
        if not inner or inner.isspace():
            return ()
        offset = self.operands_pos(instruction_pos)
        # Not a plain operand list: find the piece at fault for the message.
        position = 0
        for piece in OPERAND_SPLIT_RE.findall(inner):
            at = offset + inner.find(piece, position)
            position = inner.find(piece, position) + len(piece)
            if OPERAND_LIST_RE.fullmatch(piece) is None:
                if re.match(r"\s*[a-z][a-z0-9\-]*\s*\(", piece):
                    raise self.error(at, "an instruction nested in an operand list is not supported; define it as "
                                         "its own instruction and use its name")
                raise self.error(self.skip_ws(at), f"expected an operand name, {self.found(self.skip_ws(at))}")
        raise self.error(offset, f"malformed operand list ({inner.strip()[:60]})")

    def shape(self, text: str, instruction_pos: int) -> Shape:
        try:
            return parse_shape(text)
        except (ShapeSyntaxError, RecursionError) as e:
            offset = self.text.find(text, instruction_pos)
            if isinstance(e, RecursionError):
                raise self.error(offset, "shape nested too deeply") from None
            raise self.error(offset + e.offset, e.message) from None

    def infer_shape(self, opcode: str, operands: tuple[str, ...], attributes: dict[str, str],
                    by_name: dict[str, Instruction], pos: int) -> Shape:
        """The result shape of an instruction written without one, which XLA allows where it can infer it."""
        shapes = []
        for operand in operands:
            if operand not in by_name:
                raise self.error(pos, f"{opcode} without a result shape uses {operand!r} before it is defined; "
                                      "write the shape or define the operand first")
            shapes.append(by_name[operand].shape)
        if opcode == "tuple":
            return Shape("tuple", tuple_shapes=tuple(shapes))
        if opcode == "get-tuple-element" and shapes and shapes[0].is_tuple:
            index = attributes.get("index", "")
            if index.isdigit() and int(index) < len(shapes[0].tuple_shapes):
                return shapes[0].tuple_shapes[int(index)]
        if opcode in SAME_SHAPE_AS_OPERAND and shapes:
            return shapes[-1] if opcode in ("select", "clamp") else shapes[0]
        raise self.error(pos, f"expected a result shape before opcode {opcode!r}; xlainspect infers it only for "
                              "tuple, get-tuple-element and elementwise ops")

    def check_operands(self, instructions: list[Instruction], by_name: dict[str, Instruction],
                       computation: str) -> None:
        for instruction in instructions:
            for operand in instruction.operands:
                if operand not in by_name:
                    raise self.error(self.line_pos(instruction.line),
                                     f"instruction {instruction.name!r} uses operand {operand!r}, which computation "
                                     f"{computation!r} does not define")
            if "control-predecessors" not in instruction.attributes:
                continue
            for predecessor in instruction.control_predecessors:
                if predecessor not in by_name:
                    raise self.error(self.line_pos(instruction.line),
                                     f"instruction {instruction.name!r} names control predecessor {predecessor!r}, "
                                     f"which computation {computation!r} does not define")

    def check_calls(self, module: HloModule) -> None:
        names = module.by_name
        if len(names) != len(module.computations):
            seen: set[str] = set()
            for computation in module.computations:
                if computation.name in seen:
                    raise self.error(self.line_pos(computation.line), f"computation {computation.name!r} defined twice")
                seen.add(computation.name)
        for instruction in self.callers:
            for role, value in instruction.attributes.items():
                if role not in CALL_ROLE_SET:
                    continue
                for called in parse_called_names(value):
                    if called not in names:
                        raise self.error(self.line_pos(instruction.line),
                                         f"instruction {instruction.name!r} calls computation {called!r} ({role}=), "
                                         "which the module does not define")

    def line_pos(self, line: int) -> int:
        """Offset of the start of a (file-relative) line in this chunk, for errors found after parsing."""
        pos = 0
        for _ in range(line - 1 - self.line_offset):
            pos = self.text.find("\n", pos) + 1
        return pos
