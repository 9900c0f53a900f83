"""Process-group helpers for ``torchrun`` (training with DDP, sharded evaluation): backend choice, rank
queries, reductions, gathering.

Everything works without a process group (a single process is rank 0 of a world of 1), so the same
code runs under ``python`` and under ``torchrun`` on one or many nodes.
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher using its environment) started this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); False when not launched
    by torchrun. On CUDA each process takes the GPU of its LOCAL_RANK."""
    if not launched_by_torchrun() or is_distributed():
        return is_distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return True


def local_device(device: torch.device) -> torch.device:
    """The device of this process: cuda:LOCAL_RANK under torchrun on CUDA, else ``device``."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over the processes (a copy; the input is left alone)."""
    value = value.detach().clone()
    if is_distributed():
        dist.all_reduce(value)
        value /= world_size()
    return value


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def gather_objects(obj) -> list:
    """Every process's ``obj`` (one entry per rank, in rank order); [obj] in a single process."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
