"""Running a framework in a child process: fresh XLA flags, progress while it runs, one-line failures.

XLA reads ``XLA_FLAGS`` once, when a framework's backend starts, and two frameworks in one process would share
threads and allocators; so every capture and timing runs in a child process of its own. The parent passes one
request of :mod:`.protocol` as JSON, the child's only argument; the child prints one ``RESULT {json}`` line, read
back as the result class the parent expects, and exits with status 3 when its framework is not installed, 4 when it
was asked for a GPU and sees none.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.errors import InputError
from xlainspect.runners.protocol import M, Message, R, Request

if TYPE_CHECKING:
    from xlainspect.programs import Program

_INSTALL_HINT = {"jax": "pip install 'xlainspect[jax]' (jax and jaxlib)",
                 "tf": "pip install 'xlainspect[tf]' (tensorflow-cpu)",
                 "torch": "'make torch-env' (PyTorch's own environment, .venv-torch/) or pip install "
                          "'xlainspect[torch]'",
                 "torch_xla": "'make torch-env' (PyTorch's own environment, .venv-torch/) or pip install "
                              "'xlainspect[torch]'"}
_PACKAGES = {"jax": "jax jaxlib numpy", "tf": "tensorflow-cpu numpy", "torch": "torch==2.9.0 opacus==1.6.0 numpy",
             "torch_xla": "torch==2.9.0 torch-xla==2.9.0 numpy"}
_MODULES = {"jax": ("jax",), "tf": ("tensorflow",), "torch": ("torch", "opacus"), "torch_xla": ("torch", "torch_xla")}


def framework_modules(framework: str) -> tuple[str, ...]:
    """The modules a child of ``framework`` imports (``torch_xla`` needs torch too; ``torch`` needs Opacus)."""
    return _MODULES[framework]
_PROGRESS_EVERY_S = 2.0
EXIT_FRAMEWORK_MISSING = 3  # a child could not import its framework; its stderr holds a MISSING line
EXIT_NO_GPU = 4  # a child asked for the GPU backend found none; its last stderr line says so
EXIT_BAD_PROGRAM = 5  # a user's program failed to load or run; its stderr holds a PROGRAM line saying why
EXIT_NOT_PROVIDED = 6  # a user's program gives no function for the child's framework; a PROGRAM line says so
_RESULT = "RESULT "
_PROGRAM = "PROGRAM "
_UNSUPPORTED = "UNSUPPORTED "


# -- the child's side -------------------------------------------------------------------------------------------


def missing_framework(*modules: str) -> bool:
    """In a child: imports ``modules`` and, when one is not installed or is a jax xlainspect does not support,
    prints the line the parent looks for.

    Returns:
        True when a module is missing or unsupported; the child should then exit with
        :data:`EXIT_FRAMEWORK_MISSING`.
    """
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as e:
        print(f"MISSING {e}", file=sys.stderr)
        return True
    if "jax" in modules:
        from xlainspect.runners.jax_private import UnsupportedJax, check_jax

        try:
            check_jax()
        except UnsupportedJax as e:
            print(f"{_UNSUPPORTED}{e}", file=sys.stderr)
            return True
    return False


def program_failed(error: Exception) -> int:
    """In a child: reports a user's program that could not be loaded or called as one ``PROGRAM`` line.

    Returns:
        The exit status: :data:`EXIT_NOT_PROVIDED` when the program has no function for this framework, else
        :data:`EXIT_BAD_PROGRAM`.
    """
    from xlainspect.programs.user import FrameworkNotProvided

    print(_PROGRAM + " ".join(str(error).split()), file=sys.stderr, flush=True)
    return EXIT_NOT_PROVIDED if isinstance(error, FrameworkNotProvided) else EXIT_BAD_PROGRAM


def answer(request: Request, framework: str, doing: str, work: Callable[[Program], Message]) -> int:
    """In a child: loads the request's program (built-in or a user's), prints ``work(program)`` as the result, and
    turns a user's program that fails, to load or in ``work``, into one ``PROGRAM`` line at the user's own line.

    Args:
        framework: whose function a user's program must give here (``tf`` for TF's module compiled by JAX).
        doing: what ``work`` does, for that line ("compiling it").

    Returns:
        The child's exit status.
    """
    from xlainspect.programs import resolve_program
    from xlainspect.programs.user import is_user_program, user_failure

    try:
        print_result(work(resolve_program(request.program, framework)))
    except Exception as e:  # a user's program that fails to load, trace, compile or run (its own errors kept)
        if not is_user_program(request.program):
            raise
        return program_failed(user_failure(e, request.program, doing))
    return 0


def read_request(request_type: type[R], argv: list[str]) -> R:
    """In a child: the request the parent passed as the only argument.

    Raises:
        RecordError: the argument is not that request (the parent and child disagree on the protocol).
    """
    try:
        data = json.loads(argv[0]) if argv else None
    except ValueError:
        data = argv[0]
    return request_type.from_json(data, request_type.child)


def print_result(result: Message) -> None:
    """In a child: prints the one line the parent reads back."""
    print(_RESULT + json.dumps(result.to_json()), flush=True)


# -- the parent's side ------------------------------------------------------------------------------------------


class ChildFailed(Exception):
    """A child process failed; the message says which framework, why, and what to do."""


class NotProvided(ChildFailed):
    """A user's program gives no function for the child's framework (a JAX-only program asked for TF).

    Commands asked for both frameworks skip it with a note; asked for that framework alone, it is a failure.
    """


def skip_unprovided(framework: str, frameworks: Sequence[str], program: str, report: Callable[[str], None],
                    error: NotProvided | None = None) -> str | None:
    """Says that ``framework`` is skipped because ``program`` gives no function for it (known from an earlier
    child's result, or from ``error``).

    Returns:
        The failure to record: ``error``'s message when that framework was the only one asked for, else None.
    """
    report(f"{framework}: skipped, {program} gives no {framework} function")
    return str(error) if error is not None and len(frameworks) == 1 else None


PYTHON_ENV = "XLAINSPECT_PYTHON"  # the interpreter children run under when no --python is given
TORCH_PYTHON_ENV = "XLAINSPECT_TORCH_PYTHON"  # the interpreter PyTorch's children run under
TORCH_VENV = ".venv-torch"  # PyTorch's own environment beside the checkout ('make torch-env')
MIN_CHILD_PYTHON = (3, 11)


def torch_python() -> str | None:
    """The interpreter PyTorch's children run under when no ``--python`` is given: ``$XLAINSPECT_TORCH_PYTHON``,
    else this interpreter when it has torch, else the checkout's ``.venv-torch/bin/python``; None when none is.

    PyTorch gets an environment of its own because torch 2.9.0 (which torch-xla 2.9 needs exactly) pins NVIDIA
    wheels older than those jax's CUDA plugin takes, so the two do not share one environment.
    """
    import importlib.util

    if os.environ.get(TORCH_PYTHON_ENV):
        return os.environ[TORCH_PYTHON_ENV]
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    beside = Path(__file__).resolve().parents[2] / TORCH_VENV / "bin" / "python"
    return str(beside) if beside.exists() else None


def framework_python(framework: str, python: str | os.PathLike[str] | None = None) -> str:
    """The interpreter a child of ``framework`` runs under: ``python`` when given; for ``torch`` and ``torch_xla``
    :func:`torch_python`'s choice when there is one; else :func:`child_python`'s.

    Raises:
        InputError: as :func:`child_python`.
    """
    if python is None and framework in ("torch", "torch_xla") and (chosen := torch_python()) is not None:
        return child_python(chosen) if os.environ.get(TORCH_PYTHON_ENV) else chosen
    return child_python(python)


def child_python(python: str | os.PathLike[str] | None = None) -> str:
    """The interpreter a framework child runs under: ``python``, else ``$XLAINSPECT_PYTHON``, else this one.

    Another interpreter is how one xlainspect compares framework versions: a second virtual environment with an
    older or newer jax (and numpy) compiles the program, and needs no xlainspect of its own, because the child
    imports xlainspect's child modules from this checkout (they import only numpy and the framework).

    Raises:
        InputError: the interpreter is missing, does not run, or is older than Python 3.11.
    """
    chosen = python if python is not None else os.environ.get(PYTHON_ENV) or None
    if chosen is None:
        return sys.executable
    where = f"--python {chosen}" if python is not None else f"{PYTHON_ENV}={chosen}"
    path = shutil.which(str(chosen)) or str(chosen)
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise InputError(f"{where}: no such Python interpreter; give the path of a virtual environment's "
                         "bin/python that has the framework installed")
    try:
        probe = subprocess.run([path, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"{where}: could not run it ({e}); give a working Python interpreter") from e
    version = tuple(int(part) for part in probe.stdout.split()) if probe.returncode == 0 else ()
    if len(version) != 2:
        raise InputError(f"{where}: it did not run as Python ({_last_error_line(probe.stderr)}); give a working "
                         "Python interpreter")
    if version < MIN_CHILD_PYTHON:
        raise InputError(f"{where}: Python {version[0]}.{version[1]} is too old; framework children need Python "
                         f"{MIN_CHILD_PYTHON[0]}.{MIN_CHILD_PYTHON[1]} or newer")
    return os.path.abspath(path) if os.sep in path else path


def dump_flags(folder: str | os.PathLike[str], pass_dumps: bool = False) -> str:
    """The ``XLA_FLAGS`` that make XLA write every module it compiles into ``folder`` as text (before and after
    optimization), and with ``pass_dumps`` the module after every pass too."""
    flags = [f"--xla_dump_to={folder}", "--xla_dump_hlo_as_text"]
    if pass_dumps:
        flags.append("--xla_dump_hlo_pass_re=.*")
    return " ".join(flags)


def run_child(request: Request, result_type: type[M], report: Callable[[str], None], activity: str,
              xla_flags: str = "", backend: str = "cpu", python: str | None = None) -> M:
    """Runs ``python -m <request.child> REQUEST_JSON`` and reads its RESULT line as ``result_type``.

    Args:
        report: called with a progress line every two seconds while the child runs.
        activity: what the child does, for those lines and for failures ("timing", "compiling").
        xla_flags: added to the child's ``XLA_FLAGS``.
        backend: ``cpu`` keeps the framework off any GPU the machine has; ``gpu`` leaves the devices visible and
            the child checks that it got one.
        python: the interpreter to run the child under, as :func:`child_python` chose it; None asks it.

    Raises:
        ChildFailed: the framework is missing, the child failed, or it printed no result.
        RecordError: the result is not a ``result_type`` (the parent and child disagree on the protocol).
    """
    framework = request.framework
    env = dict(os.environ)
    if xla_flags:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + xla_flags).strip()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "cpu":
        if framework == "jax":
            env["JAX_PLATFORMS"] = "cpu"
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        if framework == "torch_xla":
            env["PJRT_DEVICE"] = "CPU"
    elif framework == "torch_xla":
        env.setdefault("PJRT_DEVICE", "CUDA")
    if framework == "torch_xla" and request.child.endswith("compile_child"):
        # PyTorch/XLA writes no metadata into its HLO unless asked: with these, every op names its ATen op and the
        # Python line that made it, as JAX's and TF's do (the module is otherwise the same). Only dumps ask: the
        # timing child's tracing would pay for the stack walks on every step.
        env.setdefault("XLA_IR_DEBUG", "1")
        env.setdefault("XLA_HLO_DEBUG", "1")
    interpreter = python or framework_python(framework)
    command = [interpreter, "-m", request.child, json.dumps(request.to_json())]
    with tempfile.TemporaryDirectory(prefix="xlainspect-path-") as path_dir, \
            tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        env["PYTHONPATH"] = _package_path(Path(path_dir)) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, stdin=subprocess.DEVNULL)
        started = time.perf_counter()
        last_report = -_PROGRESS_EVERY_S
        try:
            while child.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed - last_report >= _PROGRESS_EVERY_S:
                    report(f"{framework}: {activity} {request.program} in a child process ({elapsed:.0f}s)")
                    last_report = elapsed
                time.sleep(0.2)
        except BaseException:
            child.kill()
            child.wait()
            raise
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    unsupported = [line for line in err.splitlines() if line.startswith(_UNSUPPORTED)]
    if child.returncode == EXIT_FRAMEWORK_MISSING and unsupported:
        where = f" (in {interpreter})" if interpreter != sys.executable else ""
        raise ChildFailed(f"{framework}{where}: {unsupported[-1][len(_UNSUPPORTED):]}")
    if child.returncode == EXIT_FRAMEWORK_MISSING and "MISSING" in err:
        if framework in ("torch", "torch_xla") and python is None and torch_python() is None:
            raise ChildFailed(f"{framework} is not installed; install it with {_INSTALL_HINT[framework]}, or give "
                              f"its environment's interpreter with --python or ${TORCH_PYTHON_ENV}")
        if interpreter != sys.executable:
            raise ChildFailed(f"{framework} is not installed for {interpreter}; install it there "
                              f"({interpreter} -m pip install {_PACKAGES[framework]}) or choose another --python")
        raise ChildFailed(f"{framework} is not installed; install it with {_INSTALL_HINT[framework]} "
                          "(or run 'make install')")
    said = [line[len(_PROGRAM):] for line in err.splitlines() if line.startswith(_PROGRAM)]
    if child.returncode in (EXIT_BAD_PROGRAM, EXIT_NOT_PROVIDED) and said:
        raise (NotProvided if child.returncode == EXIT_NOT_PROVIDED else ChildFailed)(f"{framework}: {said[-1]}")
    if child.returncode == EXIT_NO_GPU:  # the child's last line says why
        raise ChildFailed(f"{framework}: {([line for line in err.splitlines() if line.strip()] or ['no GPU'])[-1]}")
    if child.returncode != 0:
        raise ChildFailed(f"{framework}: {activity} {request.program} failed (exit {child.returncode}): "
                          f"{_last_error_line(err)}")
    for line in out.splitlines():
        if line.startswith(_RESULT):
            return result_type.from_json(json.loads(line[len(_RESULT):]), request.child)
    raise ChildFailed(f"{framework}: the child process printed no result; its output ended with: "
                      f"{_last_error_line(err or out)}")


def _package_path(folder: Path) -> str:
    """``folder``, made to hold only this xlainspect package (a link), for the child's ``PYTHONPATH``.

    The folder that holds the package may be a site-packages with this environment's jax in it; a child under
    another interpreter (``--python``) must import that interpreter's framework, so it gets the package alone.
    """
    (folder / "xlainspect").symlink_to(Path(__file__).resolve().parents[1], target_is_directory=True)
    return str(folder)


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]
