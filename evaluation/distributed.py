"""Sharding and gathering for ``torchrun`` evaluation: samples are split rank::world (no padding, so
no duplicates) and gathered back in dataset order."""
from __future__ import annotations

import os
from typing import Any


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment(device: str = "cpu") -> bool:
    """Initialise the default process group when launched by torchrun (WORLD_SIZE > 1); gloo on CPU,
    nccl on CUDA. Returns whether a group is active."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return True


def shard(num_items: int) -> range:
    """This rank's indices: rank, rank + world, ..."""
    rank, size = world()
    return range(rank, num_items, size)


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (a list with one entry per rank); [obj] in a single process."""
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        return [obj]
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


def is_main() -> bool:
    return world()[0] == 0
