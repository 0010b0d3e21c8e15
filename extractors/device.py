"""Choosing where tensors live: CUDA when this process was given a GPU, the CPU otherwise."""

from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> str:
    """The torch device for this process.

    Ray sets `CUDA_VISIBLE_DEVICES` for an actor with `num_gpus`; torch then sees exactly that GPU.
    `requested` (e.g. from a flag) wins, so a run can be pinned to the CPU on a GPU machine.
    """
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def set_cpu_threads(threads: int | None) -> None:
    """Bound torch's intra-op threads: several actors on one node must not oversubscribe cores."""
    if threads:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
