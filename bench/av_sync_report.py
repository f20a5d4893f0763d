"""The A/V sync benchmark's report (bench/bench_av_sync.py): the table of judged files
(medians over clips, one row per system and path) and the contact sheet of mouths around
bilabials.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from bench.av_sync_clips import BACKENDS, Clip
from bench.av_sync_measure import Judged, verdict
from bench.av_sync_movie import FPS, RATE, aligned_audio, locate, read_movie
from stylecast.training.timeline import Phone

SHEET_BILABIALS = 2  # bilabials per backend on the contact sheet (the longest)
SHEET_FRAMES = range(-2, 7)  # frames shown around each, from its middle (lips up to 6 late)
SHEET_TILE = 96  # pixels per mouth tile


def fmt_lags(lags: list[float]) -> str:
    return ", ".join(f"{v:+.1f}" if np.isfinite(v) else "still" for v in lags)


def table(results: list[Judged]) -> str:
    head = (
        "| system | path | lag, frames (median) | lag per clip | a viewer (BT.1359) | r (median) "
        "| container offset ms | speech placed vs claimed, ms (median / worst) | audio − video "
        "length ms | p/b/m closed | p/b/m nearly closed | frames without a new picture |\n"
        + "|---" * 12
        + "|\n"
    )
    rows, seen = [], []
    for j in results:
        if (j.system, j.path) not in seen:
            seen.append((j.system, j.path))
    for system, path in seen:
        js = [j for j in results if (j.system, j.path) == (system, path)]
        lags, rs = [j.lag for j in js], [j.r for j in js]
        placed = [j.placed_ms for j in js]
        closed, total = sum(j.closed for j in js), sum(j.total for j in js)
        loose = sum(j.closed_loose for j in js)
        worst = max(placed, key=abs)
        offset = statistics.median(j.container.offset_ms for j in js)
        lag = float(np.nanmedian(lags)) if np.isfinite(lags).any() else float("nan")
        rows.append(
            f"| {system} | {path} | {lag:+.1f} | {fmt_lags(lags)} | {verdict(lag)} | "
            f"{np.nanmedian(rs):.2f} | {offset:+.1f} | "
            f"{statistics.median(placed):+.1f} / {worst:+.1f} | "
            f"{statistics.median(j.container.length_gap_ms for j in js):+.1f} | "
            f"{closed}/{total} ({100 * closed / max(total, 1):.0f}%) | "
            f"{loose}/{total} ({100 * loose / max(total, 1):.0f}%) | "
            f"{sum(j.no_picture for j in js)} |"
        )
    return head + "\n".join(rows)


def sheet_bilabials(phones: tuple[Phone, ...]) -> list[Phone]:
    """The SHEET_BILABIALS longest p/b/m between two vowels (where the lips must close and
    open again within the word, unlike one before a pause), in time order."""
    from stylecast.training.tts import CMU_VOWELS

    inner = [
        b
        for a, b, c in zip(phones, phones[1:], phones[2:], strict=False)
        if b.phone in ("P", "B", "M") and a.phone in CMU_VOWELS and c.phone in CMU_VOWELS
    ]
    return sorted(
        sorted(inner, key=lambda p: p.start - p.end)[:SHEET_BILABIALS], key=lambda p: p.start
    )


def contact_sheet(results: list[Judged], clip: Clip, closed_below: float, path: Path) -> None:
    """Mouth crops at frames c-2..c+6 around SHEET_BILABIALS of `clip`'s p/b/m, one row per
    backend (the offline render; the server's rows look the same and would double the file);
    a tile inside the +-1-frame window has a green border when the lips are closed there,
    red when open."""
    import cv2

    picks = sheet_bilabials(clip.phones)
    rows = []
    for j in (j for j in results if j.clip is clip and j.system in BACKENDS and j.path == "render"):
        movie = read_movie(j.file)
        start = locate(aligned_audio(movie), clip.speech) / RATE
        tiles = []
        for p in picks:
            first, last = (
                int(np.floor((p.start + start) * FPS)) - 1,
                int(np.ceil((p.end + start) * FPS)),
            )
            centre = int((p.start + p.end) / 2 * FPS + start * FPS)
            for t in (centre + k for k in SHEET_FRAMES):
                t = min(max(t, 0), len(movie.frames) - 1)
                cx, cy = j.mouth.centre[t]
                half = int(0.6 * j.mouth.iod[t])
                x0, y0 = max(int(cx) - half, 0), max(int(cy) - half, 0)
                crop = movie.frames[t][y0 : y0 + 2 * half, x0 : x0 + 2 * half]
                tile = cv2.resize(crop, (SHEET_TILE, SHEET_TILE), interpolation=cv2.INTER_AREA)
                if first <= t <= last:
                    colour = (0, 200, 0) if j.mouth.gap[t] < closed_below else (220, 0, 0)
                    cv2.rectangle(tile, (0, 0), (SHEET_TILE - 1, SHEET_TILE - 1), colour, 3)
                label = f"{p.phone} {t - centre:+d}  {j.mouth.gap[t]:.3f}"
                cv2.putText(tile, label, (4, SHEET_TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (255, 255, 0), 1, cv2.LINE_AA)  # fmt: skip
                tiles.append(tile)
            tiles.append(np.full((SHEET_TILE, 6, 3), 255, np.uint8))  # between bilabials
        strip = np.concatenate(tiles[:-1], axis=1)
        name = np.full((SHEET_TILE, 150, 3), 255, np.uint8)
        cv2.putText(
            name, j.system, (6, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
        )
        cv2.putText(name, j.path, (6, 75), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([name, strip], 1))
    sheet = np.concatenate(rows, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
