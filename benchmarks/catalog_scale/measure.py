"""Peak memory of a process and all its descendants (driver, raylet, Ray workers), sampled."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class Peak:
    """The largest sums seen over the tree: RSS (what the issue asks) and PSS (shared pages —
    Ray's object store, mapped by every worker — counted once)."""

    rss_mib: float
    pss_mib: float
    processes: int  # in the tree when the RSS sum peaked (Ray starts spill and idle workers)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _sums(processes: list[psutil.Process]) -> tuple[int, int]:
    rss = pss = 0
    for p in processes:
        try:
            info = p.memory_full_info()
        except psutil.Error:  # exited between listing and reading
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


class TreeSampler:
    """Samples the tree rooted at `pid` every `every` seconds until stopped."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self._root = psutil.Process(pid)
        self._every = every
        self._rss = self._pss = self._processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = _tree(self._root)
            rss, pss = _sums(tree)
            if rss > self._rss:
                self._rss, self._processes = rss, len(tree)
            self._pss = max(self._pss, pss)
            time.sleep(self._every)

    def stop(self) -> Peak:
        self._stop.set()
        self._thread.join()
        return Peak(round(self._rss / MIB, 1), round(self._pss / MIB, 1), self._processes)
