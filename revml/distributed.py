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


def shutdown() -> None:
    """End the process group: a barrier first, so that no rank tears gloo's transport down
    while another still talks to it (seen as "terminate called without an active
    exception" aborts of both ranks at exit, on a loaded machine)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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


def broadcast_state(imp: ReverseImputer) -> None:
    """Give every rank rank 0's whole fitted state (weights, scaling, prior, radius...),
    each on its own device: a GPU fit is not bit-reproducible across processes."""
    import copy

    import torch.distributed as dist

    here = imp.state_.device
    mine = None
    if dist.get_rank() == 0:
        mine = copy.copy(imp.state_)
        mine.autoencoder = (
            None if mine.autoencoder is None else copy.deepcopy(mine.autoencoder).cpu()
        )
        mine.device, mine._device_prior = torch.device("cpu"), None
    box = [mine]
    dist.broadcast_object_list(box, src=0)
    state = box[0]
    if state.autoencoder is not None:
        state.autoencoder = state.autoencoder.to(here)
    state.device = here
    imp.state_ = state


class _ShardSampler:
    """``DistributedSampler``'s order without a Dataset: one seeded permutation per epoch,
    padded to a multiple of ``world_size`` by repeating its head, rank ``r`` taking every
    ``world_size``-th index from ``r``. Every rank gets the same number of batches."""

    def __init__(self, rank: int, world_size: int, seed: int) -> None:
        self.rank, self.world, self.seed = rank, world_size, seed

    def indices(self, epoch: int, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=gen)
        total = math.ceil(n / self.world) * self.world
        if total > n:
            order = torch.cat([order, order[: total - n]])
        return order[self.rank : total : self.world]


def fit_distributed(imp: ReverseImputer, X: Any) -> ReverseImputer:
    """Fit ``imp`` on ``X`` with the autoencoder trained by ``DistributedDataParallel``.

    Every rank passes the whole ``X``: scaling, the architecture, the initial weights, the
    training masks' generator and the prior are computed from it exactly as
    :meth:`ReverseImputer.fit` does, by the same code. Only the training loop's sample
    order (a shard of one seeded permutation per epoch) and its module (wrapped in DDP,
    so each update averages the ranks' gradients) differ: the one loop,
    :func:`revml.training.train_autoencoder`, takes them through its ``hook``. Without
    an initialised process group this is ``imp.fit(X)``. With ``world_size`` ranks an
    epoch takes ``1 / world_size`` of the updates, each on ``world_size`` batches; the
    model differs from a single-process fit (not bit-identical), and it is the same on
    every rank.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .fitting import seeds
    from .training import TrainingHook

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return imp.fit(X)
    rank, world = dist.get_rank(), dist.get_world_size()
    sampler = _ShardSampler(rank, world, seeds(imp.random_state)[0])
    where: dict[str, torch.device] = {}

    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        device = next(module.parameters()).device
        where["device"] = device
        return DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None
        )

    def reduce(total: torch.Tensor) -> torch.Tensor:
        # NCCL reduces GPU tensors only; gloo takes either.
        total = total.to(where["device"])
        dist.all_reduce(total)
        return total.cpu()

    return imp._fit(X, TrainingHook(wrap=wrap, order=sampler.indices, reduce=reduce))
