"""A speech timeline over long audio: wall time and peak memory at two lengths 10× apart.

    .venv/bin/python -m benchmarks.long_audio --minutes 12 --minutes 120

Each length is a FLAC file (22.05 kHz mono: a spoken phrase every 20 s over silence, the sample
catalog's espeak-ng voice) written in blocks, then timed through `SpeechTimeline` in a fresh
process, whose peak RSS (`ru_maxrss`) is the figure: the extractor streams windows, so memory
must not grow with the duration while the segments (the output) do.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

RATE = 22050
EVERY_S = 20


def write_long_file(path: Path, minutes: int) -> int:
    """A FLAC file of `minutes` with one phrase every EVERY_S seconds; returns the phrases."""
    import numpy as np
    import soundfile as sf

    from jobs.sample.audio import spoken_phrase

    phrase = spoken_phrase("en", "The harbour at dawn, and the ferry leaving late.", RATE)
    block = np.zeros(EVERY_S * RATE, np.float32)
    block[RATE : RATE + len(phrase)] = 0.5 * phrase
    count = minutes * 60 // EVERY_S
    with sf.SoundFile(path, "w", RATE, 1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(count):
            out.write(block)
    return count


def _measure(path: str) -> None:
    """Child process: one extraction, then its figures as JSON on stdout."""
    import pyarrow as pa

    from extractors.speech import SpeechTimeline

    extractor = SpeechTimeline(device="cpu")
    batch = pa.table({"content_id": ["long"], "audio_uri": [path]})
    started = time.perf_counter()
    out = extractor.extract(batch).to_pylist()[0]
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_mib,
                      "segments": out["segment_count"], "error": out["error"]}))  # fmt: skip


def main(
    minutes: list[int] = typer.Option([12, 120], help="File lengths, in minutes."),
    out: Path = typer.Option(Path("benchmarks/out/long_audio.json"), help="JSON result."),
) -> None:
    """Print wall time, audio-seconds/s and peak RSS of the extraction at each length."""
    root = Path(tempfile.mkdtemp(prefix="bench-long-audio-"))
    results = []
    for length in minutes:
        path = root / f"{length}min.flac"
        phrases = write_long_file(path, length)
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.long_audio", "--child", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        figures |= {"minutes": length, "phrases": phrases, "file_mib": path.stat().st_size / 2**20,
                    "audio_seconds_per_s": length * 60 / figures["seconds"]}  # fmt: skip
        results.append(figures)
        print(f"{length:4d} min  {figures['seconds']:7.1f} s  "
              f"{figures['audio_seconds_per_s']:7.0f} audio-s/s  peak RSS "
              f"{figures['peak_rss_mib']:6.0f} MiB  segments {figures['segments']} of {phrases}")  # fmt: skip
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(f"×{large['minutes'] / small['minutes']:.0f} audio: wall ×"
              f"{large['seconds'] / small['seconds']:.1f}, peak RSS ×"
              f"{large['peak_rss_mib'] / small['peak_rss_mib']:.2f}")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _measure(sys.argv[2])
    else:
        typer.run(main)
