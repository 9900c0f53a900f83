"""Sharding for ``torchrun`` evaluation: samples are split rank::world (no padding, so no duplicates)
and gathered back in dataset order. Process-group handling is ``instancevg.distributed``'s."""
from __future__ import annotations

import torch

from instancevg import distributed as _dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside an initialised process group."""
    return _dist.rank(), _dist.world_size()


def init_from_environment(device: str = "cpu") -> bool:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    return _dist.init_distributed(torch.device(device))


def local_device(device: str) -> str:
    """The device this process uses: under torchrun on CUDA, cuda:LOCAL_RANK; else ``device``."""
    return str(_dist.local_device(torch.device(device)))


def shard(num_items: int) -> range:
    """This rank's indices: rank, rank + world, ..."""
    rank, size = world()
    return range(rank, num_items, size)


gather = _dist.gather_objects
is_main = _dist.is_main_process
