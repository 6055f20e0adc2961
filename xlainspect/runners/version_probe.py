"""The ``sitecustomize`` of a command run under ``xlainspect dump -- CMD``: which frameworks each Python process of it
imported, reported when the process exits.

:mod:`.command_capture` copies this file as ``sitecustomize.py`` into a folder of its own, puts that folder first on
the command's ``PYTHONPATH`` and names a file in ``XLAINSPECT_VERSIONS_FILE``. Python imports it at start-up (the
``site`` module imports the first ``sitecustomize`` on the path); at exit it appends one JSON line: the process's
interpreter and the versions of jax, jaxlib, tensorflow, torch and torch_xla found in ``sys.modules``. Frameworks
are imported after start-up, so only exit knows which were used.

It imports only the standard library (the command may run another interpreter, without xlainspect) and must never
change what the command does. The failure modes, as chosen:

- The user's own ``sitecustomize`` (later on the path, e.g. a distribution's) is still run, as Python would have run
  it; an error in it is reported by ``site`` exactly as without xlainspect.
- Every failure of the probe itself is swallowed: the command's output and exit status are the user's.
- A process that exits without running ``atexit`` handlers (``os._exit``, killed by a signal, multiprocessing's
  workers) or ignores ``PYTHONPATH`` (``python -I``, ``-E``, ``-S``) reports nothing: the manifest then lists no
  versions, and says so, rather than guessing from xlainspect's own environment.
- A command that starts several Python processes (a shell script, a launcher) gets one line per process; each line
  is written with one ``write`` to a file opened for appending, so lines do not interleave.
"""

import atexit
import json
import os
import sys

VERSIONS_FILE_ENV = "XLAINSPECT_VERSIONS_FILE"
# The modules whose versions are reported, in this order, when a process imported them.
FRAMEWORK_MODULES = ("jax", "jaxlib", "tensorflow", "torch", "torch_xla")


def imported_versions(modules=None):
    """The version of each framework module in ``modules`` (default ``sys.modules``), by module name."""
    modules = sys.modules if modules is None else modules
    found = {}
    for name in FRAMEWORK_MODULES:
        module = modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if isinstance(version, str):
            found[name] = version
    return found


def _report():
    path = os.environ.get(VERSIONS_FILE_ENV)
    if not path:
        return
    try:
        line = json.dumps({"pid": os.getpid(), "python": sys.executable,
                           "python_version": "%d.%d.%d" % sys.version_info[:3], "versions": imported_versions()})
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except Exception:  # the probe never changes what the command does
        pass


def _run_users_sitecustomize(here):
    """Runs the ``sitecustomize`` this one shadows, the next on ``sys.path``, as ``site`` would have."""
    import importlib.machinery
    import importlib.util

    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["sitecustomize"]
        raise  # site reports it as it reports any sitecustomize's error


def install():
    """Registers the report at exit, leaves ``sys.path`` as the user had it, and chains to their sitecustomize."""
    atexit.register(_report)  # registered first, so it runs last: after the frameworks' own exit handlers
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    _run_users_sitecustomize(here)


if __name__ == "sitecustomize":
    install()
