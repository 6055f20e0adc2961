"""The programs in PyTorch: eager (with Opacus for DP-SGD, the seed's baseline) and through PyTorch/XLA.

Two frameworks share one PyTorch model per classifier (``Classifier.torch_model``), built from ``torch.nn`` layers so
that Opacus' per-layer hooks recognise them:

- ``torch``: eager PyTorch on the CPU, as a PyTorch user trains. The SGD step is ``loss.backward()`` and
  ``torch.optim.SGD``; the DP-SGD step is Opacus' ``GradSampleModule`` (hooks) and ``DPOptimizer``, the library the
  seed measured JAX against. Opacus draws its noise from its own generator; here its ``add_noise`` is given the
  program's noise input instead (:class:`_GivenNoise`), so the step is the same function as JAX's and TF's. Opacus
  clips with ``min(1, C / (norm + 1e-6))`` where the others use ``1 / max(1, norm / C)``: a clipped example's
  gradient differs by a relative 1e-6 / norm, which the numerical tests allow for.
- ``torch_xla``: PyTorch/XLA, a third XLA front end. Per-example gradients come from
  ``torch.func.vmap(torch.func.grad(...))`` over the same model (``functional_call``), the step is compiled as one
  XLA module by ``torch_xla.compile(name=<the program's function name>)``, which names the dumped module.

Both take the parameters in PyTorch's layouts (``OIHW`` convolutions, ``(out, in)`` linear weights, NCHW images
inside the model); :class:`TorchStep` converts the program's inputs (the layouts JAX and TF share) on the way in
and the results on the way out, outside what is timed. Importing this module loads no framework.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xlainspect.errors import FrameworkUnavailable

if TYPE_CHECKING:
    from xlainspect.programs._classifier import Classifier

TORCH_FRAMEWORKS = ("torch", "torch_xla")


def import_torch() -> Any:
    """The ``torch`` module.

    Raises:
        FrameworkUnavailable: torch is not installed; the message names the package to install.
    """
    try:
        import torch
    except ImportError as e:
        raise FrameworkUnavailable("the PyTorch side of a program needs torch, which is not installed; run "
                                   "'pip install xlainspect[torch]' or 'make torch-env'") from e
    return torch


def import_torch_xla() -> Any:
    """The ``torch_xla`` module, on the CPU unless ``PJRT_DEVICE`` says otherwise.

    Raises:
        FrameworkUnavailable: torch_xla is not installed.
    """
    os.environ.setdefault("PJRT_DEVICE", "CPU")
    try:
        import torch_xla
    except ImportError as e:
        raise FrameworkUnavailable("the PyTorch/XLA side of a program needs torch_xla, which is not installed; "
                                   "run 'pip install xlainspect[torch]' or 'make torch-env'") from e
    return torch_xla


@dataclass(frozen=True)
class Layout:
    """Where one of the program's parameters lives in the PyTorch model.

    Attributes:
        name: the model's parameter (``conv1.weight``).
        permutation: the program's axes in PyTorch's order (``(3, 2, 0, 1)`` turns HWIO into OIHW); None when the
            layouts agree.
    """

    name: str
    permutation: tuple[int, ...] | None = None

    def to_torch(self, value: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(value, self.permutation)) if self.permutation else value

    def from_torch(self, value: np.ndarray) -> np.ndarray:
        return np.transpose(value, np.argsort(self.permutation)) if self.permutation else value


@dataclass(frozen=True)
class TorchStep:
    """A program's step in one PyTorch framework, with the conversions around it.

    Attributes:
        framework: ``torch`` or ``torch_xla``.
        name: the program's function name (PyTorch/XLA's module is named after it).
        run: the step on prepared arguments (:meth:`arguments`); returns the outputs as tensors, in PyTorch's
            layouts. Eager steps update the parameter arguments in place, as a training loop does.
        layouts: per input name, how it becomes PyTorch's (inputs not named keep their layout).
        output_layouts: per output, how it comes back.
        device: where the arguments go (``cpu`` or PyTorch/XLA's device).
    """

    framework: str
    name: str
    run: Callable[..., tuple[Any, ...]]
    layouts: Mapping[str, Layout]
    output_layouts: tuple[Layout | None, ...]
    device: Any

    def arguments(self, inputs: Mapping[str, np.ndarray]) -> list[Any]:
        """The program's numpy inputs as tensors on the step's device, in PyTorch's layouts, materialised."""
        torch = import_torch()
        args = []
        for name, value in inputs.items():
            layout = self.layouts.get(name)
            array = layout.to_torch(np.asarray(value)) if layout else np.asarray(value)
            args.append(torch.from_numpy(np.array(array, copy=True)).to(self.device))
        self.synchronize()
        return args

    def synchronize(self, outputs: Sequence[Any] = ()) -> None:
        """Waits until the step's work (and ``outputs``) is computed: PyTorch/XLA runs lazily."""
        if self.framework == "torch_xla":
            torch_xla = import_torch_xla()
            import torch_xla.core.xla_model as xm

            torch_xla.sync()
            xm.wait_device_ops()

    def to_numpy(self, outputs: Sequence[Any]) -> tuple[np.ndarray, ...]:
        """The outputs in the program's layouts, as numpy arrays."""
        arrays = []
        for output, layout in zip(outputs, self.output_layouts):
            array = output.detach().cpu().numpy()
            arrays.append(layout.from_torch(array) if layout else array)
        return tuple(arrays)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Runs the step once on the program's numpy inputs; the outputs in the program's layouts."""
        outputs = self.run(*self.arguments(inputs))
        self.synchronize(outputs)
        return self.to_numpy(outputs)


def device(framework: str) -> Any:
    """The device a framework's step runs on: the CPU for eager PyTorch, PyTorch/XLA's device for ``torch_xla``."""
    if framework == "torch_xla":
        return import_torch_xla().device()
    if framework == "torch":
        return import_torch().device("cpu")
    raise ValueError(f"{framework!r} is not a PyTorch framework; choose one of: {', '.join(TORCH_FRAMEWORKS)}")


def compiled(framework: str, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` as the framework runs it: as is for eager PyTorch, ``torch_xla.compile``'d under ``name`` for
    PyTorch/XLA (so one call is one XLA module, named ``name``)."""
    fn.__name__ = fn.__qualname__ = name
    if framework != "torch_xla":
        return fn

    def collected(*args: Any) -> Any:
        # PyTorch/XLA makes every lazy tensor still alive when the step syncs an output of its module. functorch's
        # transforms leave the step's intermediates in reference cycles, alive until the garbage collector runs:
        # without this collection the DP-SGD step's module returned 69 arrays, the per-example gradients among them.
        # A young-generation collection missed them now and then (a cycle promoted mid-trace), giving a second graph
        # with the intermediates as outputs; a full one always finds them, and is cheap because everything older
        # than the first step was frozen out of the collector's reach.
        if not frozen:
            gc.collect()
            gc.freeze()
            frozen.append(True)
        outputs = fn(*args)
        gc.collect()
        return outputs

    frozen: list[bool] = []

    collected.__name__ = collected.__qualname__ = name
    return import_torch_xla().compile(collected, name=name)


def torch_dtype(dtype: Any) -> Any:
    return getattr(import_torch(), np.dtype(dtype).name)


# -- classifiers ------------------------------------------------------------------------------------------------------


def classifier_loss(model: Classifier, logits: Any, y: Any) -> Any:
    """Mean softmax (or sigmoid) cross-entropy, with PyTorch's fused losses (as a PyTorch user writes it)."""
    functional = import_torch().nn.functional
    if model.loss == "sigmoid":
        return functional.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    return functional.cross_entropy(logits, y.long())


def _model(model: Classifier, dtype: Any) -> tuple[Any, tuple[Layout, ...], list[Any]]:
    """The classifier's ``torch.nn`` model in ``dtype``, its parameters' layouts and the parameters, in the
    program's order.

    Raises:
        ValueError: the model has no PyTorch version, or its parameters are not the ones the layouts name.
    """
    if model.torch_model is None:
        raise ValueError(f"the {model.name} model has no PyTorch version")
    module, layouts = model.torch_model()
    module = module.to(torch_dtype(dtype))
    named = dict(module.named_parameters())
    if sorted(named) != sorted(layout.name for layout in layouts):
        raise ValueError(f"the {model.name} model's PyTorch parameters {sorted(named)} are not the ones its layouts "
                         f"name ({[layout.name for layout in layouts]})")
    return module, tuple(layouts), [named[layout.name] for layout in layouts]


def _layouts(model: Classifier, layouts: Sequence[Layout], with_noise: bool) -> dict[str, Layout]:
    names = [p.name for p in model.parameters]
    by_input = dict(zip(names, layouts))
    if with_noise:
        by_input.update({f"noise_{name}": layout for name, layout in zip(names, layouts)})
    return by_input


def sgd_step(model: Classifier, framework: str, lr: float, dtype: str, name: str) -> TorchStep:
    """The plain SGD step: eager autograd and an in-place update, or one PyTorch/XLA module."""
    torch = import_torch()
    module, layouts, params = _model(model, dtype)
    n = len(params)
    where = device(framework)
    module = module.to(where)
    if framework == "torch":
        def eager_step(*args: Any) -> tuple[Any, ...]:
            for param, arg in zip(params, args[:n]):
                param.data = arg
                param.grad = None
            classifier_loss(model, module(args[n]), args[n + 1]).backward()
            with torch.no_grad():
                for param in params:
                    param.data.add_(param.grad, alpha=-lr)
            return tuple(param.data for param in params)

        run = compiled(framework, eager_step, name)
    else:
        names = [layout.name for layout in layouts]

        def xla_step(*args: Any) -> tuple[Any, ...]:
            # Autograd, as a PyTorch/XLA training step takes its gradient (functorch's grad is for the per-example
            # gradients; PyTorch/XLA's scan, which the LSTM loops with, works under autograd only).
            values = tuple(arg.detach().requires_grad_() for arg in args[:n])
            logits = torch.func.functional_call(module, dict(zip(names, values)), (args[n],))
            grads = torch.autograd.grad(classifier_loss(model, logits, args[n + 1]), values)
            return tuple(p.detach() - lr * g for p, g in zip(values, grads))

        run = compiled(framework, xla_step, name)
    return TorchStep(framework, name, run, _layouts(model, layouts, with_noise=False), tuple(layouts), where)


def dpsgd_step(model: Classifier, framework: str, clip_norm: float, noise_multiplier: float, lr: float, dtype: str,
               batch_size: int, name: str) -> TorchStep:
    """The DP-SGD step: Opacus on eager PyTorch, or ``vmap(grad)`` compiled by PyTorch/XLA."""
    torch = import_torch()
    module, layouts, params = _model(model, dtype)
    n = len(params)
    where = device(framework)
    module = module.to(where)
    noise_scale = noise_multiplier * clip_norm
    if framework == "torch":
        from opacus import GradSampleModule

        sampled = GradSampleModule(module, batch_first=True, loss_reduction="mean")
        optimizer = _GivenNoise(torch.optim.SGD(params, lr=lr), noise_multiplier=noise_multiplier,
                                max_grad_norm=clip_norm, expected_batch_size=batch_size, loss_reduction="mean")

        def opacus_step(*args: Any) -> tuple[Any, ...]:
            for param, arg in zip(params, args[:n]):
                param.data = arg
            optimizer.noise = args[n + 2:]
            optimizer.zero_grad(set_to_none=True)
            classifier_loss(model, sampled(args[n]), args[n + 1]).backward()
            optimizer.step()
            return tuple(param.data for param in params)

        run = compiled(framework, opacus_step, name)
    else:
        names = [layout.name for layout in layouts]

        def example_loss(values: tuple[Any, ...], x: Any, y: Any) -> Any:
            logits = torch.func.functional_call(module, dict(zip(names, values)), (x[None],))
            return classifier_loss(model, logits, y[None])

        per_example = torch.func.vmap(torch.func.grad(example_loss), in_dims=(None, 0, 0))

        def xla_step(*args: Any) -> tuple[Any, ...]:
            values, x, y, noise = tuple(args[:n]), args[n], args[n + 1], args[n + 2:]
            grads = per_example(values, x, y)
            norms = torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(dim=1) for g in grads))
            scale = 1.0 / torch.clamp(norms / clip_norm, min=1.0)
            batch = x.shape[0]
            return tuple(p - lr * (((g * scale.reshape((-1,) + (1,) * (g.dim() - 1))).sum(dim=0)
                                    + noise_scale * z) / batch)
                         for p, g, z in zip(values, grads, noise))

        run = compiled(framework, xla_step, name)
    return TorchStep(framework, name, run, _layouts(model, layouts, with_noise=True), tuple(layouts), where)


def _given_noise_optimizer() -> type:
    from opacus.optimizers import DPOptimizer
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    class GivenNoise(DPOptimizer):  # type: ignore[misc]
        """Opacus' DP optimizer, its noise taken from the program's input rather than drawn.

        Everything else (per-sample clipping, summing, scaling by the expected batch size, the SGD update) is
        Opacus' own; only the draw is replaced, so that the step computes the same function as JAX's and TF's.
        """

        noise: Sequence[Any] = ()

        def add_noise(self) -> None:
            if len(self.noise) != len(self.params):
                raise ValueError(f"{len(self.noise)} noise arrays given for {len(self.params)} parameters")
            std = self.noise_multiplier * self.max_grad_norm
            for param, noise in zip(self.params, self.noise):
                _check_processed_flag(param.summed_grad)
                param.grad = (param.summed_grad + std * noise).view_as(param)
                _mark_as_processed(param.summed_grad)

    return GivenNoise


def _GivenNoise(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - builds the class on first use (imports Opacus)
    return _given_noise_optimizer()(*args, **kwargs)


# -- layers the models share ------------------------------------------------------------------------------------------

CONV = (3, 2, 0, 1)  # HWIO -> OIHW
LINEAR = (1, 0)  # (in, out) -> (out, in)


def to_nchw() -> Any:
    """A layer turning the programs' NHWC images into PyTorch's NCHW (it has no parameters, Opacus ignores it).

    The result is a fresh NCHW-strided copy. A permuted NHWC array is a channels-last NCHW tensor (and with one
    channel ``contiguous()`` leaves it so, its strides being both), which PyTorch's convolutions pass on to the
    layers after them; Opacus 1.6 unfolds a convolution's input with ``as_strided`` as if it were NCHW-strided, so
    its per-sample gradients of the MNIST CNN's second convolution came out wrong (8e-2 off, where NCHW-strided
    activations agree with per-example autograd to 1e-16).
    """
    torch = import_torch()

    class ToNCHW(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)

    return ToNCHW()


def flatten_nhwc() -> Any:
    """Flattens NCHW activations in (H, W, C) order, as JAX's and TF's NHWC flatten does, so that the dense
    layer after it takes the same weight."""
    torch = import_torch()

    class FlattenNHWC(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    return FlattenNHWC()


def mean_over(*dims: int) -> Any:
    """A layer averaging over ``dims`` (time for the text models, space for the CIFAR10 CNN)."""
    torch = import_torch()

    class Mean(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x.mean(dim=dims)

    return Mean()


def max_pool(size: int, stride: int) -> Any:
    """A ``size`` x ``size`` max-pool (VALID): ``nn.MaxPool2d`` in eager PyTorch; under PyTorch/XLA the maximum of
    the window's ``size * size`` strided slices.

    PyTorch/XLA implements ``max_pool2d`` as a C++ autograd function, which functorch's ``vmap(grad)`` refuses
    ("cannot use C++ torch::autograd::Function with functorch transforms"), and ``unfold``'s gradient has no XLA
    lowering (PyTorch/XLA runs it on the CPU, splitting the step into 131 graphs at batch 32). Slices and
    ``maximum`` lower to XLA whole. ``maximum``'s gradient splits a tie between the tied elements where max-pool's
    picks one; in the models here ties occur among ReLU's zeros only, whose gradient ReLU then drops, so both compute
    the same step (the numerical tests check it).
    """
    torch = import_torch()

    class MaxPool(torch.nn.MaxPool2d):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            if x.device.type != "xla":
                return super().forward(x)
            rows, cols = (x.shape[-2] - size) // stride + 1, (x.shape[-1] - size) // stride + 1
            windows = [x[..., i:i + stride * (rows - 1) + 1:stride, j:j + stride * (cols - 1) + 1:stride]
                       for i in range(size) for j in range(size)]
            pooled = windows[0]
            for window in windows[1:]:
                pooled = torch.maximum(pooled, window)
            return pooled

    return MaxPool(size, stride=stride)


def fallbacks() -> str:
    """What made PyTorch/XLA leave XLA since it started: the ATen ops it ran on the CPU instead (its ``aten::``
    counters), as one line; "" when none did. A fallback splits a step into several graphs, with copies between the
    device and the host, so the dump would show a fragment of the step."""
    import torch_xla.debug.metrics as met

    counts = {name: met.counter_value(name) for name in met.counter_names() if name.startswith("aten::")}
    return ", ".join(f"{name} ({count} times)" for name, count in sorted(counts.items()))
