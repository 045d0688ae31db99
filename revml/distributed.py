"""Imputation and training across processes and machines with ``torch.distributed``.

Launch any script or ``revml impute`` with ``torchrun``; these helpers read its environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), start the process group (NCCL on GPUs, gloo on
CPUs) and split the work by rows. Reverse training is per-sample work whose randomness is
counter-based (row ``r`` of the table always draws sample ``r``'s dropout masks), so a
sharded imputation with the same fitted model equals a single-process one.

:func:`fit_distributed` trains the autoencoder with ``DistributedDataParallel``; it is a
different training run from :meth:`ReverseImputer.fit` (each step averages the gradients
of ``world_size`` batches), so its model is not bit-identical to a single-process fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from .imputer import ReverseImputer


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a ``torchrun`` launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def dist_env() -> DistEnv:
    """The launch described by torchrun's environment (a single process without it)."""
    return DistEnv(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init(device: str | None = None) -> DistEnv:
    """Start the default process group if torchrun launched several processes.

    The backend is NCCL when this rank imputes on a CUDA device (``device``, or CUDA when
    present and ``device`` is None), gloo otherwise; each rank takes GPU ``LOCAL_RANK``.
    Returns the environment; a single process starts nothing.
    """
    import torch.distributed as dist

    env = dist_env()
    if not env.active or dist.is_initialized():
        return env
    cuda = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return env


def device_for(env: DistEnv, device: str | None) -> str | None:
    """This rank's device: ``cuda:LOCAL_RANK`` when the job runs on GPUs."""
    cuda = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    return f"cuda:{env.local_rank}" if cuda and env.active else device


def barrier() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous rows ``[start, stop)`` of rank ``rank``: sizes differ by at most one.

    Examples
    --------
    >>> [shard_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def impute_distributed(imp: ReverseImputer, X: Any) -> Any:
    """``imp.transform(X)`` with the rows split across the ranks; every rank gets all of it.

    Each rank imputes its contiguous share with that share's ``row_offset``; the shares are
    gathered (``all_gather_object``) and concatenated in the original order, so the result
    equals a single-process ``transform`` (up to the float rounding of different batch
    shapes). Arrays, tensors (returned on the CPU) and DataFrames are accepted.
    """
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return imp.transform(X)
    rank, world = dist.get_rank(), dist.get_world_size()
    is_tensor = isinstance(X, torch.Tensor)
    data = X.cpu().numpy() if is_tensor else X
    start, stop = shard_bounds(len(data), rank, world)
    share = data.iloc[start:stop] if isinstance(data, pd.DataFrame) else data[start:stop]
    mine = imp.transform_details(share, row_offset=start).X if stop > start else share
    pieces: list = [None] * world
    dist.all_gather_object(pieces, mine)
    if isinstance(data, pd.DataFrame):
        return pd.concat(pieces)
    out = np.concatenate([np.asarray(p) for p in pieces])
    return torch.from_numpy(out) if is_tensor else out


class _ShardSampler:
    """``DistributedSampler``'s order without a Dataset: one seeded permutation per epoch,
    padded to a multiple of ``world_size`` by repeating its head, rank ``r`` taking every
    ``world_size``-th index from ``r``. Every rank gets the same number of batches."""

    def __init__(self, n: int, rank: int, world_size: int, seed: int) -> None:
        self.n, self.rank, self.world, self.seed = n, rank, world_size, seed

    def indices(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.n, generator=gen)
        total = math.ceil(self.n / self.world) * self.world
        if total > self.n:
            order = torch.cat([order, order[: total - self.n]])
        return order[self.rank : total : self.world]


def fit_distributed(imp: ReverseImputer, X: Any) -> ReverseImputer:
    """Fit ``imp`` on ``X`` with the autoencoder trained by ``DistributedDataParallel``.

    Every rank passes the whole ``X`` (the scaling, fill values and initial weights are
    computed from it exactly as :meth:`ReverseImputer.fit` does); the training batches are
    sharded across ranks deterministically, and each step averages the ranks' gradients.
    Without an initialised process group this is ``imp.fit(X)``. With ``world_size`` ranks
    an epoch takes ``1 / world_size`` of the steps, each on ``world_size`` batches; the
    model differs from a single-process fit (not bit-identical), and it is the same on
    every rank.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .training import default_train_config

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return imp.fit(X)
    rank, world = dist.get_rank(), dist.get_world_size()
    epochs = imp.epochs
    try:
        # Scaling, fill values, architecture and initial weights, without training.
        imp.set_params(epochs=0)
        imp.fit(X)
    finally:
        imp.set_params(epochs=epochs)
    module = imp.autoencoder_
    if module is None:
        return imp
    x = torch.as_tensor(
        imp.encoder_.encode(X) if imp.encoder_ is not None else np.asarray(X, dtype=np.float32),
        dtype=torch.float32,
    )
    lo, span = torch.from_numpy(imp.data_min_), torch.from_numpy(imp.data_range_)
    xs = ((x.double() - lo) / span).float()
    n = xs.shape[0]
    auto = default_train_config(n)
    n_epochs = int(epochs) if epochs is not None else auto.epochs
    batch = int(imp.train_batch_size or auto.batch_size)
    device = imp.device_
    observed = ~torch.isnan(xs)
    fill = torch.from_numpy(imp.fill_values_).float()
    xf = torch.where(observed, xs, fill).to(device)
    observed = observed.to(device)
    module.requires_grad_(True).train()
    ddp = DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )
    opt = torch.optim.Adam(ddp.parameters(), lr=float(imp.learning_rate))
    seed = int(imp.random_state) if isinstance(imp.random_state, int) else 0
    sampler = _ShardSampler(n, rank, world, seed)
    history = []
    for epoch in range(n_epochs):
        idx_all = sampler.indices(epoch).to(device)
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for start in range(0, len(idx_all), batch):
            idx = idx_all[start : start + batch]
            target, obs = xf[idx], observed[idx]
            out = ddp(target)
            n_obs = obs.sum().clamp_min(1)
            loss = ((out - target) ** 2 * obs).sum() / n_obs
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += torch.stack([loss.detach().double() * n_obs, n_obs.double()])
        dist.all_reduce(total)
        history.append(float(total[0] / total[1].clamp_min(1)))
    module.eval().requires_grad_(False)
    imp.autoencoder_ = module
    imp.history_ = history
    imp.radius_ = imp._code_radius(xs, ~torch.isnan(xs), fill, device)
    return imp
