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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from xlainspect.runners.protocol import M, Message, R, Request

_INSTALL_HINT = {"jax": "pip install 'xlainspect[jax]' (jax and jaxlib)", "tf": "pip install 'xlainspect[tf]' "
                                                                                 "(tensorflow-cpu)"}
_PROGRESS_EVERY_S = 2.0
EXIT_FRAMEWORK_MISSING = 3  # a child could not import its framework; its stderr holds a MISSING line
EXIT_NO_GPU = 4  # a child asked for the GPU backend found none; its last stderr line says so
_RESULT = "RESULT "


# -- the child's side -------------------------------------------------------------------------------------------


def missing_framework(*modules: str) -> bool:
    """In a child: imports ``modules`` and, when one is not installed, prints the line the parent looks for.

    Returns:
        True when a module is missing; the child should then exit with :data:`EXIT_FRAMEWORK_MISSING`.
    """
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as e:
        print(f"MISSING {e}", file=sys.stderr)
        return True
    return False


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


def run_child(request: Request, result_type: type[M], report: Callable[[str], None], activity: str,
              xla_flags: str = "", backend: str = "cpu") -> M:
    """Runs ``python -m <request.child> REQUEST_JSON`` and reads its RESULT line as ``result_type``.

    Args:
        report: called with a progress line every two seconds while the child runs.
        activity: what the child does, for those lines and for failures ("timing", "compiling").
        xla_flags: added to the child's ``XLA_FLAGS``.
        backend: ``cpu`` keeps the framework off any GPU the machine has; ``gpu`` leaves the devices visible and
            the child checks that it got one.

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
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", request.child, json.dumps(request.to_json())]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
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
    if child.returncode == EXIT_FRAMEWORK_MISSING and "MISSING" in err:
        raise ChildFailed(f"{framework} is not installed; install it with {_INSTALL_HINT[framework]} "
                          "(or run 'make install')")
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


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]
