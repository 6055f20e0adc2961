"""A training script, run as it is: ``python docs/examples/train.py --steps 3`` trains the transformer example for a
few steps. ``xlainspect dump -- python docs/examples/train.py --steps 3`` files every module it compiles."""

import argparse
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transformer import step  # noqa: E402  (the example beside this script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    options = parser.parse_args()
    train_step, (params, x, y) = step(options.batch_size)
    for number in range(options.steps):
        params = train_step(params, x, y)
        print(f"step {number}: |qkv| = {float(jax.numpy.linalg.norm(params['qkv'])):.4f}")


if __name__ == "__main__":
    main()
