"""``xlainspect demo``: the main job, end to end, on the seed's smallest case.

It compiles the gradient of ``mean((W @ x + b - y) ** 2)`` with respect to W and b (5x5, float32) in JAX and in
TF2+XLA, each in its own process with XLA's dump flags; diffs the kernels the two compilers launched; draws both
kernel graphs; and writes the one-page HTML report. Every file lands in one folder that the demo owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xlainspect.errors import CaptureError, InputError

PROGRAM = "linear_grad"
_MARKER = ".xlainspect-demo"  # says the folder is the demo's own, so a re-run may replace what is in it


def run_demo(out_dir: str) -> Iterator[str]:
    """Runs the demo, yielding the lines to show.

    Raises:
        InputError: the folder exists and is not the demo's (the demo never replaces a user's dumps), or cannot be
            written.
        CaptureError: a framework failed to compile the program (the message says which and what to do).
    """
    from xlainspect.analysis.census import census
    from xlainspect.analysis.diff import diff_census
    from xlainspect.hlo import read_hlo
    from xlainspect.hlo.files import atomic_write_text
    from xlainspect.output.format import diff_text
    from xlainspect.output.render import render_svg
    from xlainspect.output.report import build_report
    from xlainspect.runners.capture import dump_program

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / _MARKER).exists():
        raise InputError(f"{out}: exists and is not a demo folder; give another --out (the demo replaces only "
                         "its own files)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / _MARKER).write_text("made by xlainspect demo; a re-run replaces this folder's dumps\n")
    except OSError as e:
        raise InputError(f"{out}: cannot create the demo folder: {e.strerror}") from None
    yield f"Compiling {PROGRAM}: grad of mean((W @ x + b - y)**2) w.r.t. W (5x5) and b, in JAX and in TF2+XLA ..."
    outcome = dump_program(PROGRAM, ("jax", "tf"), out, force=True)
    if outcome.failures:
        raise CaptureError("; ".join(failure.message for failure in outcome.failures))
    for item in outcome.dumps:
        yield f"  {item.framework}: {item.directory} ({item.manifest.compiler})"
    sides = {item.framework: item.directory / "after_optimizations.txt" for item in outcome.dumps}
    censuses = {name: census(read_hlo(path)[0]) for name, path in sides.items()}
    manifests = {item.framework: item.manifest for item in outcome.dumps}
    result = diff_census(censuses["jax"], censuses["tf"], manifests["jax"].xla_version, manifests["tf"].xla_version)
    yield ""
    yield diff_text(result, "jax", "tf", str(sides["jax"]), str(sides["tf"]))
    yield ""
    for name, path in sides.items():
        svg, _ = render_svg(read_hlo(path)[0])
        atomic_write_text(out / f"{PROGRAM}-{name}.svg", svg)
    report = out / f"{PROGRAM}-report.html"
    atomic_write_text(report, build_report(PROGRAM, str(out), "cpu"))
    yield (f"Wrote the kernel graphs {out}/{PROGRAM}-jax.svg and {PROGRAM}-tf.svg, and the report {report} "
           "(open it in any browser).")
    yield (f"Next: {NEXT_STEPS}.")


# Each runs as written on a fresh clone: the diff reads the committed dumps, the dump writes beside them.
NEXT_STEPS = ("'xlainspect diff jax tf --program dpsgd_mnist', 'xlainspect dump --program dpsgd_mnist --out my-dumps', "
              "'xlainspect time --program dpsgd_mnist', 'xlainspect memory --program dpsgd_mnist'")
