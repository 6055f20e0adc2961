"""The token patterns of HLO text, and the text-level passes that run before parsing.

The patterns match whole tokens (names, shapes, bracket groups, attribute values) in one C-level match each; the
parser in :mod:`xlainspect.hlo.parse` strings them together. The passes: splitting a file into modules at ``// -----``
lines, blanking comments while keeping every offset, and finding mismatched brackets for error messages.
"""

from __future__ import annotations

import re

from xlainspect.hlo.model import CALL_ROLES

NAME = r"[A-Za-z_][\w.\-]*"
# Unrolled (`"[^"\\]*(?:\\.[^"\\]*)*"`) rather than one alternation per character: op_name strings are long.
STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"' + r"|'[^'\\]*+(?:\\.[^'\\]*+)*+'"  # raw line breaks allowed, as in XLA
STRING_RE = re.compile(STRING)
_GROUP_DEPTH = 12


def _group_pattern(depth: int) -> str:
    """A bracket group (any of ``{[(`` closed by any of ``}])``) nested up to ``depth`` levels, strings respected."""
    inner = r"""(?:[^{}\[\]()"']++|""" + STRING + ")*+"
    pattern = r"[{\[(]" + inner + r"[}\])]"
    for _ in range(depth - 1):
        inner = r"""(?:[^{}\[\]()"']++|""" + STRING + "|" + pattern + ")*+"
        pattern = r"[{\[(]" + inner + r"[}\])]"
    return pattern


_GROUP = _group_pattern(_GROUP_DEPTH)
GROUP_RE = re.compile(_GROUP)
ARRAY_SHAPE = r"[a-z][a-z0-9]*\[[^\]]*+\](?:\s*\{[^{}]*+\})?"
# A value is a run of plain characters, strings and bracket groups. Some values hold spaces (`literal=s32[] 1`,
# `replica_groups=mesh['x'=2] {'x'}`), so a value continues past spaces on its line unless a comma, a closing bracket
# or another instruction follows. Values never continue across lines outside brackets: a header's last value is
# followed by the first computation's name on a later line.
_VALUE = (r"(?:[^\s,{}\[\]()\"']++|" + STRING + "|" + _GROUP
          + r"|[ \t]++(?=[^\s,}\])])(?!(?:ROOT\s+)?%?" + NAME + r"\s*=)"
          + r"|(?<=<=)\s++(?=\[))++")  # `[1,8]<=` then `[8]` on the next line

WS_RE = re.compile(r"\s*")
_INSTRUCTION_HEAD = (
    r"(ROOT\s+)?%?(" + NAME + r")\s*=\s*"
    r"(?:(" + ARRAY_SHAPE + r")\s*|((?=\()" + _GROUP + r")\s*)?"  # array shape | tuple shape | none
    r"([a-z][a-z0-9\-]*)\s*(?=\()"
)
INSTRUCTION_HEAD_RE = re.compile(_INSTRUCTION_HEAD)
# The head in pieces, for the careful path: name, then a shape of any depth, then the opcode.
INSTRUCTION_NAME_RE = re.compile(r"(ROOT\s+)?%?(" + NAME + r")\s*=\s*")
ARRAY_SHAPE_RE = re.compile(ARRAY_SHAPE)
OPCODE_RE = re.compile(r"([a-z][a-z0-9\-]*)\s*(?=\()")
# An operand: its name, optionally after its shape (`f32[2]{0} %x`, `(f32[], s32[]) %t`), optionally followed by
# tuple indices (`%t#0`, `%t#1#0`): XLA's compact get-tuple-element, which its printer writes by default since jax
# 0.11 (`xla_dump_compact_gte`) and its lexer reads as name, '#', integer, so spaces may surround the '#'.
TUPLE_INDEX = r"(?:\s*#\s*\d+)"
_OPERAND = r"\s*(?:(?:" + ARRAY_SHAPE + r"|(?=\()" + _GROUP + r")\s*)?%?(" + NAME + TUPLE_INDEX + r"*)\s*"
_OPERAND_UNCAPTURED = _OPERAND.replace("(" + NAME, "(?:" + NAME)
OPERAND_LIST_RE = re.compile(_OPERAND + r"(?:," + _OPERAND + r")*")
OPERAND_NAMES_RE = re.compile(r"(?:^|,)" + _OPERAND)
# A whole instruction in one match: leading space, head, operands, then the run of attributes (group 8, split apart
# by ATTRIBUTE_RE). Group 6 holds a plain operand list when the parentheses hold one; otherwise group 7 holds what
# they hold (a constant's literal, a parameter's number, or something for the careful path to report). The match
# fails, and the careful path takes over, when the attribute run stops short: before a comma, or at a bracket nested
# deeper than _GROUP_DEPTH.
_OPERAND_LIST = r"(\s*|" + _OPERAND_UNCAPTURED + r"(?:," + _OPERAND_UNCAPTURED + r")*)"
_OTHER_CONTENT = r"((?:[^{}\[\]()\"']++|" + STRING + "|" + _group_pattern(_GROUP_DEPTH - 1) + r")*+)"
INSTRUCTION_RE = re.compile(
    r"\s*" + _INSTRUCTION_HEAD + r"\((?:" + _OPERAND_LIST + r"\)|" + _OTHER_CONTENT + r"\))"
    r"((?:\s*,\s*[\w.\-]+\s*=\s*" + _VALUE + r")*+)(?!\s*,|[{\[(\"'])"
)
CALL_ROLE_SET = frozenset(CALL_ROLES)
ATTRIBUTE_KEY_RE = re.compile(r"\s*,\s*([\w.\-]+)\s*=\s*")
VALUE_RE = re.compile(_VALUE)
ATTRIBUTE_RE = re.compile(r"\s*,\s*([\w.\-]+)\s*=\s*(" + _VALUE + ")")
COMPUTATION_RE = re.compile(r"(ENTRY\s+)?%?(" + NAME + r")\s*")
ARROW_SHAPE_RE = re.compile(r"\s*->\s*(" + ARRAY_SHAPE + "|" + _GROUP + r")\s*\{")
EXECUTION_THREAD_RE = re.compile(r"\s*,\s*execution_thread\s*=\s*(" + STRING + ")")
MODULE_RE = re.compile(r"HloModule\s+%?(" + NAME + ")")
TABLE_RE = re.compile(r"(FileNames|FunctionNames|FileLocations|StackFrames)(?![\w.\-])")
TABLE_ROW_RE = re.compile(r"\s*(\d+)\s*(" + STRING + r"|\{[^{}]*\})")
_NAME_RE = re.compile(NAME)
# The tuple indices of a compact get-tuple-element operand (`t#1#0` -> `1`, `0`).
TUPLE_INDEX_RE = re.compile(r"\s*#\s*(\d+)")
# An operand whose '#' is not followed by a tuple index (`%t#`, `%t#a`): group 1 ends just after the '#'.
BAD_TUPLE_INDEX_RE = re.compile(r"\s*(?:(?:" + ARRAY_SHAPE + r"|(?=\()" + _GROUP + r")\s*)?%?" + NAME + TUPLE_INDEX
                                + r"*(\s*#)(?!\s*\d)")
OPERAND_SPLIT_RE = re.compile(r"(?:[^,{}\[\]()\"']++|" + STRING + "|" + _GROUP + ")+")
_COMMENT_RE = re.compile(r"/\*|//")
_SEPARATOR_RE = re.compile(r"^// -----[ \t]*$", re.MULTILINE)  # exactly, as in XLA's tests; `// ------...` is prose

def split_chunks(text: str) -> list[tuple[int, int]]:
    if "// -----" not in text:  # the common case, found far faster than the line-anchored pattern scans
        return [(0, len(text))]
    bounds = [0]
    for match in _SEPARATOR_RE.finditer(text):
        bounds.extend((match.start(), match.end()))
    bounds.append(len(text))
    return [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]


def blank_comments(text: str) -> str:
    """Replaces ``//`` and ``/* */`` comments outside string literals with spaces, keeping every offset and newline.

    Comments are rare next to the text around them, so this scans for the two-character openers and checks each one
    against the quotes before it on its line instead of tokenizing the whole text.
    """
    pieces: list[str] = []
    kept = 0
    search_from = 0
    while True:
        match = _COMMENT_RE.search(text, search_from)
        if match is None:
            break
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        if _inside_string(text, line_start, start) or start < kept:
            search_from = start + 2
            continue
        if match.group() == "//":
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
        else:
            end = text.find("*/", start + 2)
            if end < 0:
                end = len(text)  # an unterminated comment runs to the end, as in XLA's lexer (which then fails)
            else:
                end += 2
        pieces.append(text[kept:start])
        comment = text[start:end]
        pieces.append(re.sub(r"[^\n]", " ", comment))
        kept = search_from = end
    if not pieces:
        return text
    pieces.append(text[kept:])
    return "".join(pieces)


def bracket_counts_differ(text: str) -> bool:
    """A cheap test for mismatched brackets that the fast patterns accepted; strings may make it a false alarm."""
    return (text.count("(") != text.count(")") or text.count("{") != text.count("}")
            or text.count("[") != text.count("]"))


_BRACKET_OR_QUOTE_RE = re.compile(r"[{}\[\]()\"']")
_CLOSERS = {"{": "}", "[": "]", "(": ")"}


def _inside_string(text: str, line_start: int, pos: int) -> bool:
    segment = text[line_start:pos]
    if '"' not in segment:
        return False
    return segment.replace("\\\\", "").replace('\\"', "").count('"') % 2 == 1



def first_bracket_mismatch(text: str, line_offset: int = 0) -> tuple[int, str] | None:
    """The offset and description of the first bracket, outside strings, that closes the wrong kind of bracket, closes
    nothing, or is never closed; None when all brackets match.

    The fast patterns let any bracket close any other, so this type-aware scan runs when parsing fails (a mismatch
    explains most errors best) or when bracket counts differ.
    """
    stack: list[int] = []
    pos = 0
    string_re = re.compile(STRING)
    while (match := _BRACKET_OR_QUOTE_RE.search(text, pos)) is not None:
        at = match.start()
        char = text[at]
        if char in "\"'":
            string = string_re.match(text, at)
            if string is None:  # an unterminated quote: the rest of its line is not brackets
                newline = text.find("\n", at)
                if newline < 0:
                    break
                pos = newline + 1
            else:
                pos = string.end()
            continue
        if char in _CLOSERS:
            stack.append(at)
        else:
            if not stack:
                return at, f"unbalanced brackets: {char!r} closes nothing"
            opened = stack.pop()
            expected = _CLOSERS[text[opened]]
            if char != expected:
                line = text.count("\n", 0, opened) + 1 + line_offset
                column = opened - (text.rfind("\n", 0, opened) + 1) + 1
                return at, f"unbalanced brackets: found {char!r} where {expected!r} closes the {text[opened]!r} at " \
                           f"{line}:{column}"
        pos = at + 1
    if stack:
        return stack[-1], f"unbalanced brackets: {text[stack[-1]]!r} is never closed"
    return None


# Whitespace and comments before an HLO text's first token.
LEADING_COMMENTS = r"(?:\s|//[^\n]*|/\*.*?\*/)*"
# What an HLO text starts with, after comments: a module header, an ENTRY, or a computation header.
HLO_START_RE = re.compile(LEADING_COMMENTS + r"(?:HloModule\b|ENTRY\b|%?" + NAME + r"\s*(?:\(|\{))", re.S)
# MLIR's StableHLO, what jax.jit(f).lower(...).as_text() returns: not HLO text, though users hand it to us.
STABLEHLO_RE = re.compile(r"^\s*module\b|\bfunc\.func\b|\bstablehlo\.|\bmhlo\.", re.M)
