"""Key statistics over many processes with torch.distributed: each rank runs its share of the
corpus's batches, and the Gram sums and token counts are all-reduced.

    Σ_ranks Σ_{t ∈ rank's batches} k_t k_tᵀ  =  Σ_t k_t k_tᵀ      (the same tokens as one process)

Batches are dealt round-robin (batch i to rank i mod world) from the one deterministic batch
stream every rank reads, so the token set is exactly the single-process one and C0 agrees with
it to float64 summation order. Under `torchrun` the process group is started from the
environment (NCCL on GPUs, gloo on CPUs):

    torchrun --nproc_per_node 8 -m editkit.cli stats --model meta-llama/Llama-2-7b-hf --layers 4-8
    torchrun --nnodes 2 --node_rank $R --master_addr $HOST --nproc_per_node 8 -m editkit.cli stats …

Only rank 0 writes the statistics cache; the others wait for it at a barrier.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def init_from_env() -> bool:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return active()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return active()


def mine(i: int) -> bool:
    """Whether batch i of the shared stream is this rank's."""
    return i % world() == rank()


def sum_(t: torch.Tensor) -> torch.Tensor:
    """All-reduce (sum) in place across ranks; a no-op in one process."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if active():
        dist.barrier()
