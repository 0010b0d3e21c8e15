"""Peak RSS of the extract job's driver at two snapshot sizes: it must not grow with the catalog.

    .venv/bin/python -m benchmarks.driver_memory --items 100000 1000000

For each size a fresh driver process (its own local Ray) runs the job as the CLI does — one
actor, one CPU — twice: a first run (every item computed) and a rerun with nothing changed (the
anti-join against the stored keys). The snapshot is streamed to Delta by another process first,
so none of it was ever in the measured one. Figures: the driver's peak RSS over its whole life
(`ru_maxrss`) and per run (`VmHWM`, reset before each run); Ray's own processes are not counted.
The baseline is the smaller size. Target: peak(larger) / peak(smaller) < 2 (nothing collected on
the driver). Each run's peak is also split into anonymous / file / shared memory, to show what
holds it when it grows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import typer

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MIB = 1024  # /proc and ru_maxrss count KiB
_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


def _status() -> dict[str, int]:
    """This process's memory lines from /proc/self/status, in KiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in _FIELDS:
                found[name] = int(value.split()[0])
    return found


class _Peaks:
    """Samples /proc/self/status every `every` s; the kernel's VmHWM catches what falls between."""

    def __init__(self, every: float = 0.05) -> None:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
        self.start = _status()
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(every,), daemon=True)
        self._thread.start()

    def _sample(self, every: float) -> None:
        while not self._stop.wait(every):
            now = _status()
            if now["VmRSS"] > self.peak["VmRSS"]:
                self.peak = now

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        hwm = _status()["VmHWM"]
        return {
            "start_mib": round(self.start["VmRSS"] / MIB, 1),
            "peak_mib": round(hwm / MIB, 1),
            **{f"at_peak_{k.lower()}_mib": round(self.peak[k] / MIB, 1) for k in _FIELDS[1:4]},
        }


def _write(uri: str, items: int) -> None:
    """Stream the sample catalog into Delta, one RecordBatch at a time."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from features.catalog import CATALOG_SCHEMA
    from jobs.sample import iter_catalog_batches

    batches = iter_catalog_batches(items, seed=7)
    write_deltalake(uri, pa.RecordBatchReader.from_batches(CATALOG_SCHEMA, batches))


def _measure(lake: str, signal: str, cpus: int) -> dict[str, object]:
    """Two runs of the job in this (fresh) process, each with its own peak."""
    from jobs.pipeline.extract import ExtractRequest, run_extract
    from jobs.pipeline.runtime import ensure_ray
    from jobs.settings import Settings

    settings = Settings(lake_uri=lake, ray_num_cpus=cpus)
    ensure_ray(settings)
    result: dict[str, object] = {}
    for name in ("first", "rerun"):
        peaks = _Peaks()
        started = time.perf_counter()
        record = run_extract(settings, ExtractRequest(signal=signal))
        seconds = round(time.perf_counter() - started, 1)
        counts = {k: getattr(record, k) for k in ("read", "unchanged", "extracted", "quarantined")}
        result[name] = {"seconds": seconds, **counts, **peaks.stop()}
    result["lifetime_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB, 1)
    return result


def _child(*args: str) -> dict[str, object]:
    """Run this module in a fresh interpreter and return the JSON it leaves behind."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, "-m", "benchmarks.driver_memory", *args, "--result", str(result)]
        subprocess.run(command, check=True)
        return json.loads(result.read_text()) if result.exists() else {}


def main(
    items: tuple[int, int] = typer.Option(
        (100_000, 1_000_000), help="The two catalog sizes, smaller first (the issue: 100k 1M)."
    ),
    signal: str = typer.Option("text_quality@1", help="A cheap signal, so 1M items is feasible."),
    cpus: int = typer.Option(2, help="CPUs of each driver's local Ray."),
    out: Path = typer.Option(Path("benchmarks/out/driver_memory.json"), help="JSON result."),
    role: str = typer.Option("", hidden=True, help="write | measure: a child's part."),
    lake: str = typer.Option("", hidden=True),
    size: int = typer.Option(0, hidden=True),
    result: Path | None = typer.Option(None, hidden=True),
) -> None:
    """Measure each size in fresh processes and compare the drivers' peaks."""
    if role == "write":
        _write(lake, size)
        return
    if role == "measure":
        assert result is not None
        result.write_text(json.dumps(_measure(lake, signal, cpus)))
        return

    sizes = {}
    for n in items:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
            catalog = str(Path(folder) / "catalog")
            _child("--role", "write", "--lake", catalog, "--size", str(n))
            sizes[n] = _child("--role", "measure", "--lake", folder, "--signal", signal,
                              "--cpus", str(cpus))  # fmt: skip
    small, large = (sizes[n] for n in items)
    ratio = large["lifetime_peak_mib"] / small["lifetime_peak_mib"]
    report = {"signal": signal, "cpus": cpus, "sizes": sizes, "ratio": round(ratio, 3)}
    report["passed"] = ratio < 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    lines = [
        f"driver RSS, MiB ({signal}; start → peak of each run; anon/file/shmem at the peak)",
        f"{'items':>9} {'run':<6} {'seconds':>8} {'extracted':>9} {'start':>7} {'peak':>7} "
        f"{'anon':>7} {'file':>7} {'shmem':>7}",
    ]
    for n, found in sizes.items():
        for name in ("first", "rerun"):
            r = found[name]
            lines.append(
                f"{n:>9} {name:<6} {r['seconds']:8.1f} {r['extracted']:9d} {r['start_mib']:7.1f} "
                f"{r['peak_mib']:7.1f} {r['at_peak_rssanon_mib']:7.1f} "
                f"{r['at_peak_rssfile_mib']:7.1f} {r['at_peak_rssshmem_mib']:7.1f}"
            )
        lines.append(f"{n:>9} driver peak over its life: {found['lifetime_peak_mib']:.1f} MiB")
    lines.append(
        f"ratio {items[1]}/{items[0]}: {ratio:.3f}  (target < 2)  {'pass' if ratio < 2 else 'FAIL'}"
    )
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
