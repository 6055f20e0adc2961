"""Compile-time peak against the GPU allocator's measured peak, for built-in programs on a real GPU (JAX only).

`xlainspect memory` predicts a step's device memory from XLA's buffer assignment (arguments + outputs - aliased +
temporaries). On the CPU, `memory check-peak` compares that with the process's resident peak; on a GPU the
allocator itself counts: JAX's `Device.memory_stats()["peak_bytes_in_use"]`. This runs one step per program and
batch size, each in a fresh process (the allocator's peak only rises), with preallocation off, and prints one JSON
line per run: predicted and measured bytes and their ratio.

    python bench/gpu_peak.py dpsgd_lstm:256,1024 sgd_lstm:1024

It needs a visible GPU; it is not part of the test suite (CI has none).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def measure(program_name: str, batch: int) -> dict:
    """One step of ``program_name`` at ``batch`` on the default GPU: predicted and allocator-measured peak bytes."""
    import jax

    from xlainspect.programs import get_program

    program = get_program(program_name)
    device = jax.devices()[0]
    args = [jax.device_put(value, device) for value in program.inputs(batch_size=batch).values()]
    compiled = program.jax_function().lower(*args).compile()
    analysis = compiled.memory_analysis()
    predicted = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes - analysis.alias_size_in_bytes
                 + analysis.temp_size_in_bytes)
    jax.block_until_ready(compiled(*args))
    measured = device.memory_stats()["peak_bytes_in_use"]
    return {"program": program_name, "batch": batch, "device": device.device_kind, "predicted": predicted,
            "measured": measured, "measured_over_predicted": round(measured / predicted, 4),
            "temporaries": analysis.temp_size_in_bytes, "arguments": analysis.argument_size_in_bytes}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--one":
        print(json.dumps(measure(argv[1], int(argv[2]))), flush=True)
        return 0
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    status = 0
    for spec in argv:
        name, _, sizes = spec.partition(":")
        for size in sizes.split(","):
            run = subprocess.run([sys.executable, __file__, "--one", name, size], env=env, capture_output=True,
                                 text=True)
            if run.returncode:
                status = 1
                tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
                print(json.dumps({"program": name, "batch": int(size), "error": tail[0][:300]}), flush=True)
            else:
                print(run.stdout.strip(), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
