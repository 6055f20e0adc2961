"""Users' own programs: ``FILE.py:NAME`` or ``package.module:NAME`` wherever a built-in program's name is accepted.

``NAME`` is a plain callable, with no xlainspect import needed, that returns the function to compile and example
arguments for it::

    def step():                      # or step(batch_size=32): then --batch-size and max-batch work on it
        return train_step, (params, x, y)            # a JAX function (jitted or not)
        # or {"jax": (train_step, (params, x, y)), "tf": (tf_step, (tf_params, x, y))} to compare the two

The arguments are arrays (numpy, JAX, TF), ``jax.ShapeDtypeStruct``\\ s (compile only: nothing can run), or pytrees
of them (dicts, lists, tuples, JAX's registered types); a third element, a dict, gives keyword arguments. Other
leaves are treated as the framework's own compile would: JAX traces Python numbers (weakly typed inputs), TF bakes
them in as constants, and both bake in strings and other objects.

xlainspect flattens the arguments into one array per leaf and compiles the function's own
Python code under ``jax.jit`` (or ``tf.function(jit_compile=True)``) named after it, so the module is what the
user's own jit makes of it: JAX flattens pytrees into the same parameters. Options of the user's own ``jax.jit``
(donated or static arguments) are not carried over.

The built-in programs and these are both :class:`~xlainspect.programs.Program`\\ s: a user's program is one whose
:class:`~xlainspect.programs._program.Implementation` calls ``NAME`` for its inputs, so every child process takes
either kind by the same ``--program`` string. Only child processes run a user's code (it imports a framework, and
may do anything at import); the parent checks the reference without running it (:func:`program_ref`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xlainspect.errors import InputError
from xlainspect.programs._frameworks import import_jax, import_tf, is_array, is_tf_function, jax_jit, tf_jit
from xlainspect.programs._program import InputSpec, Program
from xlainspect.programs.variants import DEFAULT, Variant

_MODULE_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_FRAMEWORK_KEYS = ("jax", "tf")


class UserProgramError(InputError):
    """A user's program cannot be loaded or called, or returned what xlainspect cannot compile."""


class FrameworkNotProvided(UserProgramError):
    """A user's program gives no function for the framework asked for (a JAX-only program asked for TF)."""


def is_user_program(spec: str) -> bool:
    """Whether ``spec`` names a user's program (``FILE.py:NAME``, ``package.module:NAME``), not a built-in one."""
    return ":" in spec


@dataclass(frozen=True)
class ProgramRef:
    """A user's program as named on the command line, checked without running it.

    Attributes:
        spec: as given (``models/mlp.py:step``); what child processes and the ``regenerate`` line receive.
        path: the Python file (absolute) for the ``FILE.py:NAME`` form, else None.
        module: the module for the ``package.module:NAME`` form, else None.
        attribute: ``NAME``.
        takes_batch_size: whether ``NAME`` has a ``batch_size`` parameter, when its ``def`` says; else None.
    """

    spec: str
    path: Path | None
    module: str | None
    attribute: str
    takes_batch_size: bool | None = None

    @property
    def folder(self) -> str:
        """The name its dumps are filed under: ``<file stem>.<NAME>`` or ``<package.module>.<NAME>``."""
        return f"{self.path.stem if self.path is not None else self.module}.{self.attribute}"


def program_ref(spec: str) -> ProgramRef:
    """Checks a ``FILE.py:NAME`` or ``package.module:NAME`` reference without running the user's code.

    The file must exist and parse, and define ``NAME`` at its top level (a ``def``, a class, an assignment or an
    import); a module must be importable from here. What ``NAME`` returns is checked where it runs, in the child.

    Raises:
        UserProgramError: one line naming the file (and line, for a syntax error) and what to do.
    """
    where, _, attribute = spec.rpartition(":")
    if not where or not attribute.isidentifier():
        raise UserProgramError(f"--program {spec}: give FILE.py:NAME or package.module:NAME, NAME a Python name "
                               "(or a built-in program's name, see 'xlainspect programs')")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise UserProgramError(f"{where}: no such file (--program {spec}); give the path of a Python file")
        return ProgramRef(spec, path, None, attribute, _check_defines(path, attribute, spec))
    if _MODULE_RE.fullmatch(where) is None:
        raise UserProgramError(f"--program {spec}: {where!r} is neither a .py file nor a module name")
    # The working folder is searched too, as `python -m` would: the child runs there, and a console script's own
    # path does not hold it.
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(where)
    except (ImportError, ValueError) as e:
        found = None
        reason = f" ({e})"
    else:
        reason = ""
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if found is None:
        raise UserProgramError(f"--program {spec}: no module {where} on this Python's path{reason}; give FILE.py:NAME "
                               "or install the package")
    takes = _check_defines(Path(found.origin), attribute, spec) if found.origin and found.origin.endswith(".py") \
        else None
    return ProgramRef(spec, None, where, attribute, takes)


def _check_defines(path: Path, attribute: str, spec: str) -> bool | None:
    """Checks that ``path`` defines ``attribute``; returns whether its ``def`` takes ``batch_size`` (None: no
    ``def`` to read, e.g. an import)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as e:
        raise UserProgramError(f"{path}:{e.lineno}: not valid Python ({e.msg}); fix it to use --program {spec}") \
            from e
    except (OSError, ValueError) as e:
        raise UserProgramError(f"{path}: cannot read it ({e})") from e
    names: set[str] = set()
    dynamic = False
    takes: bool | None = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if node.name == attribute and not isinstance(node, ast.ClassDef):
                arguments = node.args
                takes = arguments.kwarg is not None or any(
                    a.arg == "batch_size" for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs))
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                dynamic |= alias.name == "*"
                names.add(alias.asname or alias.name.split(".")[0])
        elif not isinstance(node, (ast.Expr, ast.Pass)):
            dynamic = True  # an if/try/with/for at the top may define it; the child will tell
    if attribute not in names and not dynamic:
        defined = ", ".join(sorted(name for name in names if not name.startswith("_"))[:12]) or "nothing"
        raise UserProgramError(f"{path}: defines no {attribute!r} at its top level (it defines: {defined}); "
                               f"--program {spec} names a function there that returns (function, example_args)")
    return takes


# -- the child's side: running the user's code -----------------------------------------------------------------


def load_user_program(spec: str) -> Program:
    """Imports the user's file or module and wraps ``NAME`` as a :class:`Program` (in a child process only).

    Raises:
        UserProgramError: the file or module fails to import, ``NAME`` is missing or not callable, or its
            ``batch_size`` parameter has no default.
    """
    ref = program_ref(spec)
    module = _import(ref)
    if not hasattr(module, ref.attribute):
        raise UserProgramError(f"{_where(ref)}: has no {ref.attribute!r} once imported; --program {spec} must name "
                               "a function there")
    entry = getattr(module, ref.attribute)
    if not callable(entry):
        raise UserProgramError(f"{_where(ref)}: {ref.attribute} is a {type(entry).__name__}, not callable; it must "
                               "be a function returning (function, example_args)")
    default_batch, accepts_batch = _batch_parameter(entry, ref)
    description = (inspect.getdoc(entry) or "").strip().split("\n", 1)[0] or f"your program {spec}"
    return Program(ref.folder, description, default_batch, ("float32",), {},
                   UserImplementation(ref, entry, accepts_batch, batch=default_batch))


def _where(ref: ProgramRef) -> str:
    return str(ref.path) if ref.path is not None else f"module {ref.module}"


def _import(ref: ProgramRef) -> Any:
    try:
        if ref.path is None:
            return importlib.import_module(ref.module or "")
        # The file's own folder goes first on the path, as `python FILE.py` would put it, for its sibling imports.
        sys.path.insert(0, str(ref.path.parent))
        name = "_xlainspect_user_" + re.sub(r"\W", "_", ref.path.stem)
        module_spec = importlib.util.spec_from_file_location(name, ref.path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    except UserProgramError:
        raise
    except BaseException as e:  # the user's module ran and failed: say where, in one line
        raise UserProgramError(f"{_user_frame(e, ref)}: importing it failed: {_one_line(e)}") from e


def _batch_parameter(entry: Callable[..., Any], ref: ProgramRef) -> tuple[int | None, bool]:
    try:
        parameter = inspect.signature(entry).parameters.get("batch_size")
    except (TypeError, ValueError):
        return None, False
    if parameter is None:
        return None, False
    default = parameter.default
    if isinstance(default, bool) or not isinstance(default, int) or default < 1:
        raise UserProgramError(f"{_where(ref)}: {ref.attribute}(batch_size) needs a positive integer default, e.g. "
                               f"batch_size=32, so that it runs without --batch-size")
    return default, True


def _user_frame(error: BaseException, ref: ProgramRef) -> str:
    """``FILE:LINE`` of the deepest frame of the user's own file in ``error``'s traceback, else the file."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    mine = [frame for frame in frames if ref.path is not None and Path(frame.filename) == ref.path]
    if not mine and ref.path is None:
        mine = [frame for frame in frames if "xlainspect" not in Path(frame.filename).parts]
    if mine:
        return f"{mine[-1].filename}:{mine[-1].lineno}"
    return _where(ref)


def user_failure(error: BaseException, spec: str, doing: str) -> UserProgramError:
    """A failure of the user's code while xlainspect compiles or runs it, as one line at the user's own line.

    Args:
        doing: what failed, e.g. "compiling train_step".
    """
    if isinstance(error, UserProgramError):
        return error
    return UserProgramError(f"{_user_frame(error, program_ref(spec))}: {doing} raised {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


@dataclass(frozen=True)
class _Call:
    """One framework's function and example arguments, as ``NAME`` returned them."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class _Flat:
    """A call's arguments flattened: one input per array leaf, the rest kept as constants."""

    names: tuple[str, ...]
    arrays: tuple[Any, ...]
    rebuild: Callable[[tuple[Any, ...]], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(eq=False)
class UserImplementation:
    """The :class:`~xlainspect.programs._program.Implementation` of a user's program: it calls ``NAME`` (once per
    batch size) for the function and its example arguments, and compiles the function on them, flattened."""

    ref: ProgramRef
    entry: Callable[..., Any]
    accepts_batch: bool
    per_example_gradients: bool = False
    framework: str = "jax"  # whose function the inputs are made for: a child process runs one (for_framework)
    batch: int | None = None  # the batch the functions are built on: the one whose inputs were made last
    _calls: dict[int | None, Mapping[str, _Call]] = field(default_factory=dict, repr=False)
    _flats: dict[tuple[int | None, str], _Flat] = field(default_factory=dict, repr=False)

    def for_framework(self, framework: str) -> UserImplementation:
        """Fixes which framework's function the inputs are made for (a child process runs one)."""
        self.framework = framework
        return self

    def calls(self, batch_size: int | None) -> Mapping[str, _Call]:
        """What ``NAME`` returned at ``batch_size``, by framework.

        Raises:
            UserProgramError: it raised, or returned something else than (function, args[, kwargs]) or a dict of
                them by framework.
        """
        if batch_size not in self._calls:
            try:
                returned = self.entry(batch_size=batch_size) if self.accepts_batch else self.entry()
            except BaseException as e:
                raise UserProgramError(f"{_user_frame(e, self.ref)}: {self.ref.attribute}() raised "
                                       f"{_one_line(e)}") from e
            self._calls[batch_size] = self._parse(returned)
        return self._calls[batch_size]

    def _parse(self, returned: Any) -> Mapping[str, _Call]:
        what = f"{self.ref.spec} returned"
        if isinstance(returned, Mapping):
            unknown = sorted(set(map(str, returned)) - set(_FRAMEWORK_KEYS))
            if unknown or not returned:
                raise UserProgramError(f"{what} a dict with keys {sorted(map(str, returned))}; give 'jax' and/or "
                                       "'tf', each (function, example_args)")
            return {key: self._call(value, f"{what} {{{key!r}: ...}}") for key, value in returned.items()}
        call = self._call(returned, what)
        return {"tf" if is_tf_function(call.function) else "jax": call}  # a plain function is JAX's

    def _call(self, value: Any, what: str) -> _Call:
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
            raise UserProgramError(f"{what} a {type(value).__name__}; return (function, example_args), "
                                   "(function, args, kwargs) or {'jax': ..., 'tf': ...}")
        function, args, *rest = value
        if not callable(function):
            raise UserProgramError(f"{what} ({type(function).__name__}, ...): the first item must be the function "
                                   "to compile")
        if not isinstance(args, (tuple, list)):
            raise UserProgramError(f"{what} (function, {type(args).__name__}): the example arguments must be a tuple "
                                   "or list, e.g. (params, x, y) or (x,)")
        kwargs = rest[0] if rest else {}
        if not isinstance(kwargs, Mapping):
            raise UserProgramError(f"{what} (function, args, {type(kwargs).__name__}): keyword arguments must be a "
                                   "dict")
        return _Call(function, tuple(args), dict(kwargs))

    def frameworks(self, batch_size: int | None) -> tuple[str, ...]:
        """The frameworks ``NAME`` gives a function for, in xlainspect's order."""
        return tuple(key for key in _FRAMEWORK_KEYS if key in self.calls(batch_size))

    def call(self, batch_size: int | None, framework: str | None = None) -> _Call:
        """The call for ``framework`` (default: the one fixed by :meth:`for_framework`).

        Raises:
            FrameworkNotProvided: ``NAME`` gives no function for it.
        """
        framework = framework or self.framework
        calls = self.calls(batch_size)
        if framework not in calls:
            given = " and ".join(_LABEL[key] for key in calls)
            raise FrameworkNotProvided(f"{self.ref.spec} gives only a {given} function, no {_LABEL[framework]} one; "
                                       f"return {{'jax': ..., 'tf': ...}} to compare both")
        return calls[framework]

    def flat(self, batch_size: int | None, framework: str | None = None) -> _Flat:
        """The arguments of ``framework``'s call at ``batch_size``, flattened into one input per array leaf."""
        framework = framework or self.framework
        self.batch = batch_size
        key = (batch_size, framework)
        if key not in self._flats:
            call = self.call(batch_size, framework)
            self._flats[key] = (_flatten_jax if framework == "jax" else _flatten_tf)(call)
        return self._flats[key]

    # -- the Implementation protocol --

    @property
    def function_name(self) -> str:
        try:
            return _python_function(self.call(self.batch).function).__name__
        except UserProgramError:
            return self.ref.attribute

    @property
    def output_names(self) -> tuple[str, ...]:
        return ()

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]:
        flat = self.flat(batch_size)
        return tuple(InputSpec(name, tuple(int(d) for d in np.shape(array)), "data", _Given(array), _dtype_name(array))
                     for name, array in zip(flat.names, flat.arrays))

    def jax_function(self, hyperparameters: Mapping[str, float], variant: Variant = DEFAULT) -> Callable[..., Any]:
        return jax_jit(*self._step("jax", variant))

    def tf_function(self, hyperparameters: Mapping[str, float], variant: Variant = DEFAULT) -> Any:
        return tf_jit(*self._step("tf", variant))

    def _step(self, framework: str, variant: Variant) -> tuple[Callable[..., Any], str]:
        """The user's function of the flattened inputs, and its name, for ``framework``'s compiler to wrap."""
        self._plain(variant)
        batch = self.batch
        call, flat = self.call(batch, framework), self.flat(batch, framework)
        function = _python_function(call.function)

        def step(*arrays: Any) -> Any:
            args, kwargs = flat.rebuild(arrays)
            return function(*args, **kwargs)

        return step, function.__name__

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        raise UserProgramError(f"{self.ref.spec} has no float64 reference; xlainspect checks only its built-in "
                               "programs' numbers")

    def _plain(self, variant: Variant) -> None:
        if variant != DEFAULT:
            raise UserProgramError(f"{self.ref.spec}: the ablation builds (--no-vectorize, --no-compile) exist only "
                                   "for the built-in programs")


_LABEL = {"jax": "JAX", "tf": "TF"}


@dataclass(frozen=True)
class _Given:
    """The :class:`~xlainspect.programs._sampling.Sampler` of a user's input: the array ``NAME`` gave."""

    value: Any

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Any:
        return self.value


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float, complex))


# How JAX types a Python number it traces, with x64 off (weakly typed: it takes the other operand's type).
_NUMBER_DTYPES = {bool: "bool", int: "int32", float: "float32", complex: "complex64"}


def _dtype_name(value: Any) -> str:
    if _is_number(value):
        return _NUMBER_DTYPES[type(value)]
    dtype = value.dtype
    return str(getattr(dtype, "name", dtype))


def _python_function(function: Any) -> Callable[..., Any]:
    """The user's Python code under a ``jax.jit`` or ``tf.function`` wrapper, so it is compiled once, not nested."""
    inner = getattr(function, "python_function", None)  # tf.function
    if inner is None and hasattr(function, "lower"):  # jax.jit
        inner = getattr(function, "__wrapped__", None)
    if inner is None:
        inner = function
    if not hasattr(inner, "__name__"):  # a functools.partial or a callable object
        name = getattr(getattr(inner, "func", None), "__name__", type(inner).__name__)

        def named(*args: Any, **kwargs: Any) -> Any:
            return inner(*args, **kwargs)

        named.__name__ = named.__qualname__ = name
        return named
    return inner


def _parameter_names(function: Callable[..., Any], count: int) -> list[str]:
    try:
        parameters = [p.name for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    return [parameters[i] if i < len(parameters) else f"arg{i}" for i in range(count)]


def _flatten_jax(call: _Call) -> _Flat:
    tree_util = import_jax().tree_util
    leaves, treedef = tree_util.tree_flatten_with_path((call.args, dict(call.kwargs)))
    paths = [tuple(getattr(key, "key", getattr(key, "idx", getattr(key, "name", key))) for key in path)
             for path, _ in leaves]
    # jax.jit traces Python numbers too (weakly typed)
    return _flat(call, paths, [leaf for _, leaf in leaves], lambda leaf: is_array(leaf) or _is_number(leaf),
                 lambda filled: tree_util.tree_unflatten(treedef, filled))


def _flatten_tf(call: _Call) -> _Flat:
    tf = import_tf()
    structure = (call.args, dict(call.kwargs))
    leaves = tf.nest.flatten(structure)
    paths = _nest_paths(structure)
    if len(paths) != len(leaves):  # a structure tf.nest walks differently (attrs classes...): plain names
        paths = [(0, i) for i in range(len(leaves))]
    return _flat(call, paths, leaves, is_array, lambda filled: tf.nest.pack_sequence_as(structure, filled))


def _flat(call: _Call, paths: list[tuple[Any, ...]], leaves: list[Any], is_input: Callable[[Any], bool],
          unflatten: Callable[[list[Any]], tuple[Any, Any]]) -> _Flat:
    """The inputs among ``leaves`` of ``(args, kwargs)``, named by their ``paths``, and how to put the arguments back
    together from new values of them (the other leaves kept as they were)."""
    positional = _parameter_names(_python_function(call.function), len(call.args))
    where = [index for index, leaf in enumerate(leaves) if is_input(leaf)]

    def rebuild(given: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        filled = list(leaves)
        for index, value in zip(where, given):
            filled[index] = value
        args, kwargs = unflatten(filled)
        return tuple(args), dict(kwargs)

    return _Flat(tuple(_path_name(paths[index], positional) for index in where),
                 tuple(leaves[index] for index in where), rebuild)


def _path_name(path: tuple[Any, ...], positional: list[str]) -> str:
    """A leaf's name from its path in ``(args, kwargs)``: ``params.w1``, ``batch[0]``; a positional argument is
    named after the function's parameter."""
    top, position, *rest = path
    name = positional[int(position)] if top == 0 else str(position)
    return name + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in rest)


def _nest_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every leaf in ``tf.nest.flatten``'s order: dict keys sorted, lists and tuples in order."""
    if isinstance(value, Mapping):
        return [leaf for key in sorted(value) for leaf in _nest_paths(value[key], (*path, key))]
    if isinstance(value, (list, tuple)):
        fields = getattr(value, "_fields", None)  # a namedtuple: its field names
        keys = fields if fields is not None else range(len(value))
        return [leaf for key, item in zip(keys, value) for leaf in _nest_paths(item, (*path, key))]
    return [path]
