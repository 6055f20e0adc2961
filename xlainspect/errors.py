"""The one error hierarchy of xlainspect.

Library code raises these and never exits or prints; only the CLI turns them into exit codes and one-line messages.
Every error's ``str()`` is already that one line, so a caller can show it as it is.
"""

from __future__ import annotations


class XlaInspectError(Exception):
    """Base of every error xlainspect raises on purpose.

    Attributes:
        exit_code: the process exit status the CLI uses for this error.
    """

    exit_code = 1


class InputError(XlaInspectError):
    """A path the user named is missing, unreadable or of the wrong kind."""


class HloParseError(XlaInspectError):
    """HLO text that does not follow XLA's grammar.

    Attributes:
        path: the file the text came from, or ``"<string>"``.
        line: 1-based line of the offending character.
        column: 1-based column of the offending character.
        message: what was expected there, phrased so the user knows what to fix.
    """

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{path}:{line}:{column}: {message}")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with the custom __init__
        return (type(self), (self.path, self.line, self.column, self.message))


class FrameworkUnavailable(XlaInspectError):
    """A framework (jax, tensorflow) or tool (graphviz's ``dot``) that a command needs is not installed."""


class CaptureError(XlaInspectError):
    """Compiling a program or capturing its dump failed in the child process."""


class DotTimeout(XlaInspectError):
    """graphviz's ``dot`` did not finish a drawing within its time limit (it was stopped), nor a simpler one."""


class RecordError(InputError):
    """A file or a child process's message that is not what this xlainspect writes: a key missing or of a wrong type.

    Raised when a record (``time --json`` output, a dump's ``manifest.json``, a bench CSV, a child's result) is read
    back, so an older or foreign file fails with one line instead of a ``KeyError`` deep inside a command.

    Attributes:
        source: the file, or the child process module, the record came from.
        key: where in the record, e.g. ``frameworks.jax.kernels[0].total_us``; "" for the record as a whole.
        message: what is wrong there, and what the record should have been.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: {message}")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with the custom __init__
        return (type(self), (self.source, self.key, self.message))


class CommandError(XlaInspectError):
    """A command run under ``xlainspect dump -- CMD`` could not be run, or left nothing to file.

    Attributes:
        exit_code: the command's own exit status when it failed (so a script's failure passes through), 127 when
            there is no such command, else 1.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message)

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with the custom __init__
        return (type(self), (str(self), self.exit_code))
