"""The autoencoder that reverse training runs through.

An :class:`MLPAutoencoder` is a plain ``torch.nn.Module``: an MLP encoder down to a
bottleneck and a mirrored MLP decoder. :func:`default_architecture` sizes it from the
number of features, and :func:`mlp_layers` describes any such network as a flat list of
(linear layer, activation) pairs, which is what the fused Triton path consumes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

#: Activation names every execution path (reference, compile, Triton) understands.
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "identity")


def make_activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """Return the ``nn.Module`` for an activation name from :data:`ACTIVATIONS`."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def default_architecture(n_features: int, masked: bool = False) -> tuple[tuple[int, ...], int]:
    """Hidden widths and bottleneck width for ``n_features`` inputs.

    ``masked=True`` sizes an autoencoder trained with masking (the default of
    :class:`revml.ReverseImputer`): hidden entries cannot be copied through, so it needs
    no narrow bottleneck and gains from capacity -- half the features, at most 64, and
    hidden widths of 2D up to 1024, then half that (on validation digits, 1024-512-64
    imputes missing rows better than 512-128-32: 90.9% against 90.2%; 768-384-64 fitted
    1.3-1.6x faster but lost 0.02-0.08 points on validation digits and 0.24 on the MNIST
    command's test rows, ``benchmarks/sweep_width.py``: not adopted; on 14 tables'
    validation masks ``max(128, 4D)`` and ``max(32, 2D)`` moved the blended RMSE by
    x1.0002 and x1.0005: not adopted either).

    Without masking:
    The bottleneck must be well below the input width, or the autoencoder learns the
    identity and every input becomes a fixed point (reverse training then has nothing to
    pull the missing entries towards). ``1.3 * D**(1/3)`` was chosen on validation data
    (``benchmarks/sweep_defaults.py``): on MNIST (784 features) a 12-wide code imputes
    missing rows best (90.0% missing-pixel accuracy; 8: 89.7%, 16: 89.2%, 28: 87.9%,
    64: 86.6%), on the 30-column breast-cancer table 4 to 8 are best; it gives 3 for a
    10-column table. Hidden widths widen towards 512.

    Examples
    --------
    >>> default_architecture(784)
    ((512, 128), 12)
    >>> default_architecture(10)
    ((32, 16), 3)
    >>> default_architecture(784, masked=True)
    ((1024, 512), 64)
    """
    if n_features < 2:
        raise ValueError(f"an autoencoder needs at least 2 features, got {n_features}")
    if masked:
        first = min(1024, max(64, 2 * n_features))
        return (first, first // 2), max(1, min(64, n_features // 2))
    bottleneck = max(1, min(32, round(1.3 * n_features ** (1 / 3)), n_features // 2))
    first = min(512, max(32, 2 * n_features))
    second = max(16, first // 4)
    return (first, second), bottleneck


class MLPAutoencoder(nn.Module):
    """MLP autoencoder with a mirrored decoder.

    Parameters
    ----------
    n_features : int
        Input (and output) width.
    hidden : sequence of int
        Encoder hidden widths, outermost first; the decoder mirrors them.
    bottleneck : int
        Width of the code.
    activation : str
        Hidden-layer activation, one of :data:`ACTIVATIONS`.
    bottleneck_activation : str
        Activation applied to the code (``"identity"`` keeps it linear, which suits the
        spherical regulariser of reverse training).
    output_activation : str
        Activation of the reconstruction (``"sigmoid"`` for data scaled to [0, 1]).
    negative_slope : float
        Slope for ``"leaky_relu"``.

    Examples
    --------
    >>> import torch
    >>> ae = MLPAutoencoder(12, hidden=(8,), bottleneck=3)
    >>> ae(torch.zeros(5, 12)).shape
    torch.Size([5, 12])
    >>> ae.encode(torch.zeros(5, 12)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        n_features: int,
        hidden: tuple[int, ...] | list[int] = (512, 128),
        bottleneck: int = 28,
        *,
        activation: str = "relu",
        bottleneck_activation: str = "identity",
        output_activation: str = "sigmoid",
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        widths = [int(n_features), *(int(h) for h in hidden), int(bottleneck)]
        if any(w < 1 for w in widths):
            raise ValueError(f"layer widths must be positive, got {widths}")
        for name in (activation, bottleneck_activation, output_activation):
            make_activation(name, negative_slope)  # validates the name
        self.n_features = int(n_features)
        self.hidden = tuple(int(h) for h in hidden)
        self.bottleneck = int(bottleneck)
        self.activation = activation
        self.bottleneck_activation = bottleneck_activation
        self.output_activation = output_activation
        self.negative_slope = float(negative_slope)

        def stack(sizes: list[int], last_activation: str) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
                layers.append(nn.Linear(n_in, n_out))
                is_last = i == len(sizes) - 2
                layers.append(
                    make_activation(last_activation if is_last else activation, negative_slope)
                )
            return nn.Sequential(*layers)

        self.encoder = stack(widths, bottleneck_activation)
        self.decoder = stack(widths[::-1], output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the architecture."""
        return {
            "n_features": self.n_features,
            "hidden": list(self.hidden),
            "bottleneck": self.bottleneck,
            "activation": self.activation,
            "bottleneck_activation": self.bottleneck_activation,
            "output_activation": self.output_activation,
            "negative_slope": self.negative_slope,
        }


@dataclass(frozen=True)
class LayerSpec:
    """One fused layer: ``act(x @ weight.T + bias)``."""

    weight: torch.Tensor  # (out_features, in_features)
    bias: torch.Tensor | None  # (out_features,)
    activation: str
    negative_slope: float = 0.01


def _activation_name(module: nn.Module) -> tuple[str, float] | None:
    if isinstance(module, nn.ReLU):
        return "relu", 0.0
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", float(module.negative_slope)
    if isinstance(module, nn.Tanh):
        return "tanh", 0.0
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", 0.0
    if isinstance(module, nn.Identity):
        return "identity", 0.0
    return None


def _sequential_layers(seq: nn.Module) -> list[LayerSpec] | None:
    if not isinstance(seq, nn.Sequential):
        return None
    specs: list[LayerSpec] = []
    pending: nn.Linear | None = None
    for child in seq:
        if isinstance(child, nn.Linear):
            if pending is not None:
                specs.append(LayerSpec(pending.weight, pending.bias, "identity"))
            pending = child
            continue
        act = _activation_name(child)
        if act is None or pending is None:
            return None
        specs.append(LayerSpec(pending.weight, pending.bias, act[0], act[1]))
        pending = None
    if pending is not None:
        specs.append(LayerSpec(pending.weight, pending.bias, "identity"))
    return specs


def mlp_layers(module: nn.Module) -> tuple[list[LayerSpec], int] | None:
    """Describe an MLP autoencoder as fused layers, or ``None`` if it is not one.

    Accepts any module with ``encoder`` and ``decoder`` attributes that are
    ``nn.Sequential`` stacks of ``nn.Linear`` each followed by at most one activation from
    :data:`ACTIVATIONS`. Returns the layers in execution order and the number of encoder
    layers (the code is the output of layer ``n_encoder - 1``).
    """
    encoder = getattr(module, "encoder", None)
    decoder = getattr(module, "decoder", None)
    if encoder is None or decoder is None:
        return None
    enc = _sequential_layers(encoder)
    dec = _sequential_layers(decoder)
    if not enc or not dec:
        return None
    layers = enc + dec
    for prev, nxt in itertools.pairwise(layers):
        if prev.weight.shape[0] != nxt.weight.shape[1]:
            return None
    if layers[0].weight.shape[1] != layers[-1].weight.shape[0]:
        return None
    return layers, len(enc)
