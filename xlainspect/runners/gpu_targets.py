"""GPU target descriptions for compiling without a GPU: which GPU XLA:GPU should pretend to compile for.

XLA:GPU's fusion, tiling and library choices depend on the GPU's compute capability, core count, shared memory and
bandwidth; a ``GpuTargetConfigProto`` in text form carries them. The package ships descriptions of an H100 (SXM,
80 GB) and an A100 (SXM4, 80 GB); a user may give the path of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from xlainspect.errors import InputError

TARGETS_DIR = Path(__file__).resolve().parent / "targets"
DEFAULT_TARGET = "h100"


@dataclass(frozen=True)
class GpuTarget:
    """A GPU to compile for.

    Attributes:
        name: the short name (``h100``) or the description file's stem; dump folders are ``gpu-<name>``.
        config: the ``GpuTargetConfigProto`` text.
        path: the file it came from.
    """

    name: str
    config: str
    path: Path

    @property
    def description(self) -> str:
        """The device name the description gives, e.g. ``NVIDIA H100 80GB HBM3``."""
        match = re.search(r'device_description_str:\s*"([^"]*)"', self.config)
        return match.group(1) if match else self.name

    @property
    def memory_bytes(self) -> int | None:
        """The device memory the description gives (``device_memory_size``), or None."""
        match = re.search(r"device_memory_size:\s*(\d+)", self.config)
        return int(match.group(1)) if match else None

    @property
    def compute_capability(self) -> str:
        """``9.0`` for an H100."""
        block = re.search(r"cuda_compute_capability\s*\{([^}]*)\}", self.config)
        major = re.search(r"major:\s*(\d+)", block.group(1)) if block else None
        minor = re.search(r"minor:\s*(\d+)", block.group(1)) if block else None
        return f"{major.group(1) if major else '?'}.{minor.group(1) if minor else '0'}"


def shipped_targets() -> tuple[str, ...]:
    """Names of the descriptions that come with xlainspect."""
    return tuple(sorted(path.stem for path in TARGETS_DIR.glob("*.txtpb")))


def gpu_target(name_or_path: str = DEFAULT_TARGET) -> GpuTarget:
    """A shipped target by name (``h100``, ``a100``), or a ``GpuTargetConfigProto`` text file by path.

    Raises:
        InputError: neither a shipped name nor a readable description.
    """
    path = TARGETS_DIR / f"{name_or_path}.txtpb"
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"unknown GPU target {name_or_path!r}; choose one of {', '.join(shipped_targets())} or "
                             "give the path of a GpuTargetConfigProto text file")
    try:
        config = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the GPU target description: {e}") from None
    if "gpu_device_info" not in config:
        raise InputError(f"{path}:1: not a GpuTargetConfigProto (no gpu_device_info block); see "
                         f"{TARGETS_DIR / (DEFAULT_TARGET + '.txtpb')} for the form")
    return GpuTarget(path.stem, config, path)
