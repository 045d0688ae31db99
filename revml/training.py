"""Training the autoencoder on data that may itself have missing values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm


class TrainingDivergedError(FloatingPointError):
    """Autoencoder training produced a non-finite loss: no model is better than a broken one.

    A subclass of :class:`FloatingPointError`; raised by :func:`train_autoencoder` (and so
    by :meth:`revml.ReverseImputer.fit`) with the epoch, batch and learning rate in the
    message.
    """


@dataclass(frozen=True)
class TrainConfig:
    """How the autoencoder is trained (see :class:`revml.ReverseImputer`)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    #: Fraction of the observed entries hidden from the input (and still scored) in each
    #: batch: denoising training that teaches the AE to fill gaps. 0 trains a plain AE.
    mask_fraction: float = 0.0
    seed: int = 0


@dataclass
class TrainHistory:
    """Mean training loss per epoch (MSE over observed entries)."""

    loss: list[float] = field(default_factory=list)


def default_train_config(n_samples: int, seed: int = 0) -> TrainConfig:
    """Batch size and epochs sized from the number of samples.

    Aims at about 5,000 optimiser updates: enough for MNIST-sized data (60,000 rows: 256 per
    batch, 22 epochs) and for a few hundred table rows (small batches, more epochs), capped
    so small data does not train for hours.
    """
    batch = int(min(256, max(16, 2 ** math.floor(math.log2(max(n_samples // 16, 1))))))
    updates_per_epoch = math.ceil(n_samples / batch)
    epochs = int(min(500, max(10, math.ceil(5000 / updates_per_epoch))))
    return TrainConfig(epochs=epochs, batch_size=batch, seed=seed)


def train_autoencoder(
    module: nn.Module,
    x: torch.Tensor,
    fill: torch.Tensor,
    cfg: TrainConfig,
    *,
    verbose: bool = False,
) -> TrainHistory:
    """Train ``module`` in place to reconstruct ``x`` (N, D); NaN entries are missing.

    Missing entries are replaced by ``fill`` (D,) (column means) at the input and carry no
    loss. With ``cfg.mask_fraction > 0`` a random share of the observed entries is also
    replaced by ``fill`` at the input but still scored, so the network learns to fill gaps.
    ``x`` and ``module`` must be on the same device. Shuffling and masking draw from a
    generator seeded with ``cfg.seed``.
    """
    device = x.device
    n = x.shape[0]
    observed = ~torch.isnan(x)
    x_filled = torch.where(observed, x, fill)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = TrainHistory()
    module.train()
    bar = tqdm(range(cfg.epochs), desc="training autoencoder", disable=not verbose, unit="epoch")
    for epoch in bar:
        order = torch.randperm(n, generator=gen).to(device)
        total, count = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            target = x_filled[idx]
            obs = observed[idx]
            inp = target
            if cfg.mask_fraction > 0:
                hide = torch.rand(target.shape, generator=gen).to(device) < cfg.mask_fraction
                inp = torch.where(hide, fill, target)
            out = module(inp)
            n_obs = obs.sum().clamp_min(1)
            loss = ((out - target) ** 2 * obs).sum() / n_obs
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"autoencoder training diverged: the loss became {float(loss.detach())} "
                    f"in epoch {epoch + 1}, batch {start // cfg.batch_size + 1} "
                    f"(learning rate {cfg.lr}). "
                    "Lower learning_rate, or check the input scale (scaling='none' with large "
                    "values overflows float32)"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * int(n_obs)
            count += int(n_obs)
        history.loss.append(total / max(count, 1))
        bar.set_postfix(loss=f"{history.loss[-1]:.5f}")
    module.eval()
    return history
