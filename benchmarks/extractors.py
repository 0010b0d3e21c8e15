"""Items/s per extractor on this machine, beside the cost of decoding the same media alone.

    .venv/bin/python -m benchmarks.extractors --items 200

Each item-scope signal's extractor runs in this process (no Ray: the figure is the extractor's
own cost) over a sample catalog with real media; the baseline decodes the same files and does
nothing else. For audio it also prints audio seconds processed per wall second.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _decode_audio(uri: str) -> None:
    import soundfile as sf

    for _ in sf.blocks(uri, blocksize=65536, dtype="float32"):
        pass


def _decode_image(uri: str) -> None:
    from PIL import Image

    with Image.open(uri) as image:
        image.load()


def _decode_video(uri: str) -> None:
    import av

    with av.open(uri) as container:
        for _ in container.decode(video=0):
            pass


DECODERS = {"audio_uri": _decode_audio, "artwork_uri": _decode_image, "video_uri": _decode_video}


def _timed(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def main(
    items: int = typer.Option(200, help="Sample catalog size (media are written for each item)."),
    threads: int = typer.Option(2, help="torch threads."),
    device: str = typer.Option("", help="torch device (default: cuda when present, else cpu)."),
    out: Path = typer.Option(Path("benchmarks/out/extractors.json"), help="JSON result."),
) -> None:
    """Measure every item-scope extractor and print one line per signal."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import torch
    from deltalake import DeltaTable

    from features import all_signals
    from jobs.pipeline.extractors import load_extractor_class
    from jobs.sample import write_sample_catalog

    torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    root = Path(tempfile.mkdtemp(prefix="bench-extractors-"))
    sample = write_sample_catalog(str(root / "catalog"), root / "media", items, seed=5)
    catalog = pa.table(DeltaTable(sample.snapshot_uri).to_pyarrow_table())
    truth = pq.read_table(sample.ground_truth_uri).to_pandas().set_index("content_id")

    results = []
    for signal in all_signals():
        cls = load_extractor_class(signal.extractor)
        if cls.scope != "item":
            continue
        extractor = cls(device=device)
        rows = catalog
        for column in cls.required:
            rows = rows.filter(pc.is_valid(rows.column(column)))
        extractor.extract(rows.slice(0, 2))  # warm-up: lazy imports, first-call costs
        seconds = sum(
            _timed(extractor.extract, rows.slice(start, cls.batch_size))
            for start in range(0, rows.num_rows, cls.batch_size)
        )
        result = {
            "signal": signal.ref,
            "items": rows.num_rows,
            "items_per_s": rows.num_rows / seconds,
        }
        media = next((c for c in cls.required if c in DECODERS), None)
        if media:
            uris = [u for u in rows.column(media).to_pylist() if u]
            decode_seconds = 0.0
            for uri in uris:
                try:
                    decode_seconds += _timed(DECODERS[media], uri)
                except Exception:  # the planted broken files: the extractor pays for them too
                    continue
            result["decode_only_items_per_s"] = len(uris) / decode_seconds
            result["ratio_to_decode"] = result["items_per_s"] / result["decode_only_items_per_s"]
            if media == "audio_uri":
                audio_s = (
                    truth.loc[rows.column("content_id").to_pylist(), "clip_duration_ms"].sum()
                    / 1000
                )
                result["audio_seconds_per_s"] = float(audio_s) / seconds
        results.append(result)
        extra = (
            f"  decode only {result['decode_only_items_per_s']:8.1f} items/s"
            f"  (extractor / decode {result['ratio_to_decode']:.2f})"
            if media
            else ""
        )
        audio = (
            f"  {result['audio_seconds_per_s']:7.1f} audio-s/s"
            if "audio_seconds_per_s" in result
            else ""
        )
        typer.echo(f"{signal.ref:<24} {result['items_per_s']:8.1f} items/s{audio}{extra}")

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": device, "threads": threads, "results": results}, indent=2))


if __name__ == "__main__":
    typer.run(main)
