"""Parsing HLO text into :class:`~xlainspect.hlo.model.HloModule` values.

The grammar is XLA's (``xla/hlo/parser``): optional ``HloModule name, attr=value...`` header, optional stack-frame
tables, then computations ``[ENTRY] name [(params) -> shape] { instructions } [, execution_thread="..."]``, each
instruction ``[ROOT] name = [shape] opcode(operands), attr=value, ...``. Whitespace and comments are free between
tokens, so statements may span lines.

Beyond the grammar, it keeps the rules XLA's parser keeps (:mod:`xlainspect.hlo.validate`): names and computations
defined above their users, the computations each opcode needs, an ``input_output_alias`` inside the entry's shapes.
Result shapes the text leaves out are inferred as XLA infers them (:mod:`xlainspect.hlo.infer_shape`).

Speed matters (optimized modules run to tens of megabytes), so whole tokens are matched by compiled regular
expressions: balanced brackets up to a fixed depth in one match, with a character scanner as the fallback for deeper
nesting. Python code runs once per instruction and attribute, not once per character; the rules cost a dictionary
lookup per operand, checked as each instruction is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from xlainspect.errors import HloParseError, InputError
from xlainspect.hlo.async_wrappers import with_async_wrappers
from xlainspect.hlo.attributes import parse_called_names, unquote
from xlainspect.hlo.gcpause import paused_gc
from xlainspect.hlo.infer_shape import CannotInfer, infer_shape
from xlainspect.hlo.metadata import StackFrames, stack_frames_from_tables
from xlainspect.hlo.model import Computation, HloModule, Instruction, make_instruction
from xlainspect.hlo.opcodes import REQUIRED_CALLS, async_wrapped_opcode
from xlainspect.hlo.shape import SHAPE_CACHE, Shape, ShapeSyntaxError, parse_shape
from xlainspect.hlo.tokens import (
    ARRAY_SHAPE,
    ARRAY_SHAPE_RE,
    ARROW_SHAPE_RE,
    ATTRIBUTE_KEY_RE,
    ATTRIBUTE_RE,
    BAD_TUPLE_INDEX_RE,
    CALL_ROLE_SET,
    COMPUTATION_RE,
    EXECUTION_THREAD_RE,
    GROUP_RE,
    HLO_START_RE,
    INSTRUCTION_HEAD_RE,
    INSTRUCTION_NAME_RE,
    INSTRUCTION_RE,
    MODULE_RE,
    NAME,
    OPCODE_RE,
    OPERAND_LIST_RE,
    OPERAND_NAMES_RE,
    OPERAND_SPLIT_RE,
    STABLEHLO_RE,
    STRING_RE,
    TABLE_RE,
    TABLE_ROW_RE,
    TUPLE_INDEX_RE,
    VALUE_RE,
    WS_RE,
    blank_comments,
    bracket_counts_differ,
    first_bracket_mismatch,
    split_chunks,
)
from xlainspect.hlo.validate import (
    Invalid,
    check_call_order,
    check_input_output_alias,
    check_required_calls,
    use_before_definition,
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
    if clean.strip() and HLO_START_RE.match(clean) is None and (
            STABLEHLO_RE.search(text[:20000]) or not (clean.lstrip()[:1].isalpha() or clean.lstrip()[:1] in "%_")):
        raise _not_hlo_text(text, clean, path)  # the parser's own message would be about brackets or a name
    modules: list[HloModule] = []
    # Parsing builds a few objects per instruction and no reference cycles; CPython's cyclic collector would
    # otherwise rescan the growing heap again and again, a third of the time on a large module.
    with paused_gc():
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
    if not modules:
        raise HloParseError(path, 1, 1, "no HLO module or computation found")
    return modules


def _not_hlo_text(text: str, clean: str, path: str) -> HloParseError:
    """The error for text that does not start like HLO: StableHLO (MLIR) said as such, anything else quoted."""
    start = len(clean) - len(clean.lstrip())
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    if STABLEHLO_RE.search(text[:20000]):
        return HloParseError(path, line, column, "this is StableHLO (MLIR), not HLO text; give the optimized HLO: "
                                                 "jax.jit(f).lower(*args).compile().as_text(), or a dump's "
                                                 "*after_optimizations.txt")
    first = clean[start:].split("\n", 1)[0].strip()[:30]
    return HloParseError(path, line, column, f"this does not look like HLO text (it starts with {first!r}); give an "
                                             "HLO module: a dump's *after_optimizations.txt, or .compile().as_text()")


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
        self.defined: dict[str, Computation] = {}  # computations of the current module parsed so far
        self.header_pos = 0  # where the current module starts, for errors about its header
        self.compact_gtes: dict[str, str] = {}  # `t#0`, `t#1#0` -> the get-tuple-element made for it (per computation)
        self.taken_names: set[str] | None = None  # names a made get-tuple-element must avoid; found on first need
        self.made_names: set[str] = set()  # names given to made get-tuple-elements of the current module
        self.substring_tests = 0  # names looked for in the text before collecting its names
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
        self.header_pos = pos
        header = MODULE_RE.match(text, pos)
        if header is not None:
            name = header.group(1)
            attributes, pos = self.attributes(header.end())
        elif text.startswith("HloModule", pos):
            raise self.error(pos + 9, "expected a module name after 'HloModule'")
        frames, pos = self.stack_frames(self.skip_ws(pos))
        self.callers = []
        self.opcodes_seen = set()
        self.defined = {}
        self.taken_names = None
        self.made_names = set()
        self.substring_tests = 0
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
            self.defined.setdefault(computation.name, computation)
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
        try:
            check_call_order(module, self.callers)
            check_input_output_alias(module)
        except Invalid as e:
            raise self.error(self.locate(e.line, e.anchors), e.message) from None
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
        return stack_frames_from_tables(tables), pos

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
        required_roles = _REQUIRED_ROLES.get
        self.compact_gtes = {}
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
            for operand in operands:  # XLA resolves each name as it reads it: no forward references, no cycles
                if operand not in by_name:
                    if "#" in operand:  # rare enough to leave the loop for: `%t#0` names a tuple element
                        operands = self.tuple_elements(operands, name, computation, by_name, ordered, line,
                                                       line_pos, pos, frames)
                        break
                    raise self.undefined_use(name, operand, "operand", computation, line_pos, pos)
            if "control-predecessors" in attributes:
                for predecessor in parse_called_names(attributes["control-predecessors"]):
                    if predecessor not in by_name:
                        raise self.undefined_use(name, predecessor, "control predecessor", computation,
                                                         line_pos, pos)
            if shape_text is not None:
                shape = shape_cache.get(shape_text) or self.shape(shape_text, line_pos)
            else:
                shape = self.infer_shape(opcode, operands, attributes, by_name, line_pos)
            instruction = make(name, opcode, shape, operands, attributes, computation, is_root is not None, line,
                               literal, parameter_number, frames)
            roles = required_roles(opcode)
            if roles is not None:
                for role in roles:
                    if role not in attributes:
                        error = self.missing_call(instruction, line_pos)
                        if error is not None:
                            raise error
                        break
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
                bad_index = BAD_TUPLE_INDEX_RE.match(piece)
                if bad_index is not None:
                    after = self.skip_ws(at + bad_index.end(1))
                    raise self.error(after, f"expected a tuple index (a number) after '#', {self.found(after)}")
                if re.match(r"\s*[a-z][a-z0-9\-]*\s*\(", piece):
                    raise self.error(at, "an instruction nested in an operand list is not supported; define it as "
                                         "its own instruction and use its name")
                raise self.error(self.skip_ws(at), f"expected an operand name, {self.found(self.skip_ws(at))}")
        raise self.error(offset, f"malformed operand list ({inner.strip()[:60]})")

    def tuple_elements(self, operands: tuple[str, ...], user: str, computation: str,
                       by_name: dict[str, Instruction], ordered: list[Instruction], line: int, instruction_pos: int,
                       rest: int, frames: StackFrames) -> tuple[str, ...]:
        """``operands`` with each compact ``t#i`` (or ``t#i#j``) replaced by the get-tuple-element XLA makes for it.

        XLA's parser turns ``%t#i`` into ``get-tuple-element(%t), index=i`` placed just before the instruction that
        uses it, one per element and computation (a later ``%t#i`` reuses it), and names it ``t_i`` unless that name
        is taken. The same happens here, so instruction counts, opcodes and operands agree with XLA's.
        """
        resolved = []
        for operand in operands:
            if "#" not in operand:
                if operand not in by_name:
                    raise self.undefined_use(user, operand, "operand", computation, instruction_pos, rest)
                resolved.append(operand)
                continue
            base = operand[:operand.index("#")].rstrip()
            if base not in by_name:
                raise self.undefined_use(user, base, "operand", computation, instruction_pos, rest)
            producer, key, suffix = base, base, ""
            for index_text in TUPLE_INDEX_RE.findall(operand):
                index = int(index_text)
                owner, key = key, f"{key}#{index}"
                suffix += f"_{index}"
                made = self.compact_gtes.get(key)
                if made is None:
                    element = self.tuple_element(by_name[producer].shape, owner, index, key, instruction_pos)
                    made = self.unique_name(base + suffix)
                    gte = replace(make_instruction(made, "get-tuple-element", element, (producer,),
                                                   {"index": str(index)}, computation, False, line, None, None,
                                                   frames), synthetic=True)
                    by_name[made] = gte
                    ordered.append(gte)
                    self.compact_gtes[key] = made
                    self.opcodes_seen.add("get-tuple-element")
                producer = made
            resolved.append(producer)
        return tuple(resolved)

    def tuple_element(self, shape: Shape, owner: str, index: int, written: str, instruction_pos: int) -> Shape:
        """Element ``index`` of ``shape``, the shape of ``owner`` (``t`` or ``t#1``), for the operand ``written``."""
        if not shape.is_tuple:
            message = f"operand '{written}' takes element {index} of a tuple, but '{owner}' has shape {shape}"
        elif index >= len(shape.tuple_shapes):
            message = (f"operand '{written}': tuple index {index} is out of range; '{owner}' has "
                       f"{len(shape.tuple_shapes)} elements ({shape})")
        else:
            return shape.tuple_shapes[index]
        base = written[:written.index("#")]
        raise self.error(self.find_name(base, self.find_after_head(instruction_pos, "(")), message)

    def unique_name(self, name: str) -> str:
        """``name``, or ``name.1``, ``name.2``... if the module's text or an earlier made instruction has it."""
        candidate, number = name, 0
        while candidate in self.made_names or self.defined_in_text(candidate):
            number += 1
            candidate = f"{name}.{number}"
        self.made_names.add(candidate)
        return candidate

    def defined_in_text(self, name: str) -> bool:
        """Whether the chunk's text defines ``name`` (or might: any ``name =`` counts, attributes included).

        A made name (``arg_tuple.1_0``) rarely occurs in the text at all, and a substring test says so at memory
        speed; when it does occur, or after a few such tests (a module with many compact operands), every ``name =``
        of the text is collected, once.
        """
        if self.taken_names is None:
            self.substring_tests += 1
            if name not in self.text and self.substring_tests <= _SUBSTRING_TESTS:
                return False
            self.taken_names = set(_DEFINED_NAME_RE.findall(self.text))
        return name in self.taken_names

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
        try:
            return infer_shape(opcode, [by_name[operand].shape for operand in operands], attributes, self.defined)
        except CannotInfer as e:
            raise self.error(self.opcode_pos(pos), e.message) from None

    # -- rules beyond the grammar (xlainspect.hlo.validate) -----------------------------------------------------------

    def undefined_use(self, user: str, used: str, relation: str, computation: str, instruction_pos: int,
                              rest: int) -> HloParseError:
        """The error for an instruction naming ``used``, which no instruction above it defines; ``rest`` is where
        the computation's next instruction starts."""
        later = self.instructions_after(rest)
        message = use_before_definition(user, used, relation, computation, later)
        keyword = "control-predecessors" if relation == "control predecessor" else "("
        at = self.find_name(used, self.find_after_head(instruction_pos, keyword))
        return self.error(at, message)

    def instructions_after(self, pos: int) -> dict[str, tuple[int, tuple[str, ...]]]:
        """The instructions from ``pos`` to the end of the computation: name -> (line, names it depends on).

        For error messages only: stops quietly at text that does not parse.
        """
        text = self.text
        later: dict[str, tuple[int, tuple[str, ...]]] = {}
        try:
            while True:
                pos = self.skip_ws(pos)
                if pos >= len(text) or text.startswith("}", pos):
                    return later
                match = INSTRUCTION_RE.match(text, pos)
                if match is not None and match.group(6) is not None:
                    name, opcode, operand_list = match.group(2, 5, 6)
                    operands = () if opcode in ("constant", "parameter") else tuple(
                        OPERAND_NAMES_RE.findall(operand_list))
                    attributes = dict(ATTRIBUTE_RE.findall(match.group(8) or ""))
                    start, pos = match.start(2), match.end()
                else:
                    _, name, _, opcode, inner, attributes, end = self.instruction_slow(pos)
                    operands = () if opcode in ("constant", "parameter") else self.operand_names(inner or "", pos)
                    start, pos = pos, end
                operands = tuple(operand.split("#", 1)[0].rstrip() for operand in operands)  # `t#0` depends on t
                predecessors = parse_called_names(attributes.get("control-predecessors", ""))
                later.setdefault(name, (text.count("\n", 0, start) + 1 + self.line_offset, operands + predecessors))
        except HloParseError:
            return later

    def missing_call(self, instruction: Instruction, instruction_pos: int) -> HloParseError | None:
        """The error for an instruction without a computation its opcode needs (None for a good conditional)."""
        try:
            check_required_calls(instruction)
        except Invalid as e:
            return self.error(self.opcode_pos(instruction_pos), e.message)
        return None

    def find_after_head(self, instruction_pos: int, keyword: str) -> int:
        """Offset of ``keyword`` after the opcode of the instruction at ``instruction_pos`` (its start if absent)."""
        head = INSTRUCTION_HEAD_RE.match(self.text, instruction_pos)
        start = instruction_pos if head is None else head.end()
        found = self.text.find(keyword, start)
        return start if found < 0 else found

    def find_name(self, name: str, pos: int) -> int:
        """Offset of the name ``name`` (with or without ``%``) at or after ``pos``; ``pos`` if not found."""
        match = re.compile(r"(?<![\w.\-])%?" + re.escape(name) + r"(?![\w.\-])").search(self.text, pos)
        return pos if match is None else match.start()

    def opcode_pos(self, instruction_pos: int) -> int:
        head = INSTRUCTION_HEAD_RE.match(self.text, instruction_pos)
        return instruction_pos if head is None else head.start(5)

    def locate(self, line: int, anchors: tuple[str, ...]) -> int:
        """Offset for an error found after parsing: from ``line`` (0: the module header), find each anchor in turn
        (the last as a name when it is one) and point at the last found."""
        pos = self.line_pos(line) if line else self.header_pos
        for number, anchor in enumerate(anchors):
            if number == len(anchors) - 1 and _NAME_RE.fullmatch(anchor):
                return self.find_name(anchor, pos)
            found = self.text.find(anchor, pos)
            if found < 0:
                return pos
            pos = found if number == len(anchors) - 1 else found + len(anchor)
        return pos

    def line_pos(self, line: int) -> int:
        """Offset of the start of a (file-relative) line in this chunk, for errors found after parsing."""
        pos = 0
        for _ in range(line - 1 - self.line_offset):
            pos = self.text.find("\n", pos) + 1
        return pos


# The attributes each opcode must have; "" (never an attribute) sends every conditional to check_required_calls.
_REQUIRED_ROLES = {opcode: tuple(role for role, _ in roles) for opcode, roles in REQUIRED_CALLS.items()}
_REQUIRED_ROLES["conditional"] = ("",)
_NAME_RE = re.compile(NAME)
_SUBSTRING_TESTS = 16  # past this many made names, collecting every defined name once is cheaper than a search each
# Where an instruction's name can be defined: at a line's start, or right after a computation's `{` (one-line
# modules), past `ROOT`. Anchored, it scans a module several times faster than a search at every position.
_DEFINED_NAME_RE = re.compile(r"(?m)(?:^|\{)[ \t]*(?:ROOT[ \t]+)?%?(" + NAME + r")[ \t]*=")
