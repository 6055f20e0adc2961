"""Seeded numpy sampling of every program input: parameters, data, labels and DP-SGD noise.

Inputs come from numpy, never from a framework's initializer or random generator, so JAX, TF and the float64
reference see the very same numbers and can be compared exactly. Each input draws from its own stream, keyed by the
seed and the input's name: a program's parameters do not change with its batch size, and the DP-SGD and SGD variants
of a model start from the same parameters and data.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The random generator of input ``name`` under ``seed``."""
    # crc32, not hash(): Python salts str hashes per process, and inputs must not change between runs.
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


class Sampler(Protocol):
    """How one input's values are drawn; every sampler returns float64 (or int32 labels) for the shape asked."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray: ...


@dataclass(frozen=True)
class GlorotUniform:
    """Glorot (Xavier) uniform weights: U(-l, l), l = sqrt(6 / (fan_in + fan_out)), as Keras initializes them.

    Realistic scales keep activations and gradients in the range the seed's models train in, so clipping is
    exercised (some per-example norms above C, some below) rather than always or never.
    """

    fan_in: int
    fan_out: int

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        limit = math.sqrt(6.0 / (self.fan_in + self.fan_out))
        return rng.uniform(-limit, limit, size=shape)


@dataclass(frozen=True)
class Uniform:
    """U(low, high). Biases use a small non-zero range: a zero bias would hide a bias that one side drops."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape)


@dataclass(frozen=True)
class StandardNormal:
    """N(0, 1): data features, and the DP-SGD noise that the step scales by sigma * C."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(size=shape)


@dataclass(frozen=True)
class Labels:
    """Class labels, uniform over ``range(num_classes)``, as int32 (what both frameworks' losses take)."""

    num_classes: int

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, self.num_classes, size=shape).astype(np.int32)


@dataclass(frozen=True)
class Tokens:
    """Token ids of IMDb-like text, as int32: ids ``reserved`` and up, drawn with Zipf's law over the vocabulary.

    The seed's IMDb vocabulary is the 10,000 most frequent words plus 4 reserved ids (padding, start, unknown,
    unused). Text repeats its frequent words, so an example reads some embedding rows several times; that is what
    makes an embedding's gradient a scatter-add rather than a scatter, and the reference must get it right. The rank
    ``r`` word (``r`` from 1) is drawn with probability proportional to ``1 / r``.
    """

    vocabulary: int
    reserved: int = 4

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        words = self.vocabulary - self.reserved
        weights = 1.0 / np.arange(1, words + 1)
        return (self.reserved + rng.choice(words, size=shape, p=weights / weights.sum())).astype(np.int32)
