"""torchrun support: the process group, the device and random streams of this process, DDP modules."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from qcalo.errors import ConfigError


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); under torchrun joins the process group (gloo / nccl)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"torch_device '{device}' requested but torch sees no CUDA device")
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return rank, world, torch.device("cuda", local)
    return rank, world, torch.device(device)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def gather(obj, world: int) -> list:
    """`obj` of every rank (collective under DDP), [obj] alone."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def rng_state(gen: torch.Generator, device: torch.device) -> dict:
    """This process's random streams: torch's global one, the loop's, CUDA's."""
    state = {"torch": torch.get_rng_state(), "loop": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["loop"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def finish(world: int) -> None:
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
