"""The audio front end: CPU cost, look-ahead latency, and phone-recognition accuracy.

    python -m bench.bench_audio [--sentences 48] [--runs 5]
    python -m bench.bench_audio --calibrate   # prints recognizer.INITIAL_CMN from train voices

1. CPU seconds per second of audio (process time, so load-independent; medians of RUNS) for
   mel, prosody and the recognizer inside a live stream fed 20 ms chunks, the total, and
   the whole-utterance path the corpus uses; the wall time of one 20 ms push.
2. Look-ahead of each input (frames and ms) and the resampler's hold-back per input rate.
3. Frame-level phone and viseme accuracy against espeak-ng's true phones (training/tts.py)
   on the held-out voices, for several recognizer look-aheads and for the full decode, and
   the share of frames on which streaming and the full decode disagree.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.report import write_section
from stylecast.engine import audio, recognizer
from stylecast.engine.pcm import SAMPLE_RATE, StreamResampler, frames_covering
from stylecast.engine.phonemes import SIL_ID, VISEME_OF_ID
from stylecast.training.sentences import generate_sentences
from stylecast.training.timeline import phone_ids_per_frame
from stylecast.training.tts import HELD_OUT_VOICES, TRAIN_VOICES, synthesize

VIS = np.array(VISEME_OF_ID)
LOOKAHEADS = (0, 1, 2, 3, 4, 6, 10)
CHUNK = SAMPLE_RATE // 50  # 20 ms pushes, as clients send
MODEL_DEFAULT_CMN = "40,3,-1,0,0,0,0,0,0,0,0,0,0"  # pocketsphinx's en-us starting point


def corpus(n: int, voices, seed: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """[(audio, true ids per frame, voice name)], sentence i in voice i mod len(voices)."""
    out = []
    for i, text in enumerate(generate_sentences(n, seed=seed)):
        u = synthesize(text, voices[i % len(voices)])
        out.append((u.audio, phone_ids_per_frame(u.phones, u.n_frames), u.voice))
    return out


class _Timed:
    """Wraps a callable, adding its process time to `.seconds`."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t = time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - t


def cpu_costs(speech: np.ndarray, runs: int) -> dict[str, float]:
    """CPU seconds per audio second, medians over runs."""
    seconds = len(speech) / SAMPLE_RATE
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        front = audio.AudioFrontEnd()
        mel = _Timed(front._compute_mel)
        pros = _Timed(audio.prosody)
        rec_push, rec_flush = _Timed(front._recognizer.push), _Timed(front._recognizer.flush)
        front._compute_mel, front._recognizer.push, front._recognizer.flush = (
            mel,
            rec_push,
            rec_flush,
        )
        audio.prosody = pros
        push_wall = []
        t = time.process_time()
        try:
            for i in range(0, len(speech), CHUNK):
                w = time.perf_counter()
                front.push(speech[i : i + CHUNK], SAMPLE_RATE)
                push_wall.append(time.perf_counter() - w)
            front.flush()
        finally:
            audio.prosody = pros.fn
        total = time.process_time() - t
        parts = (mel.seconds, pros.seconds, rec_push.seconds + rec_flush.seconds)
        t = time.process_time()
        audio.features_for_audio(speech, front=front)
        whole = time.process_time() - t
        for key, value in (
            ("mel", parts[0]),
            ("prosody", parts[1]),
            ("recognizer", parts[2]),
            ("total (live, 20 ms pushes)", total),
            ("whole utterance (features_for_audio)", whole),
        ):
            rows.setdefault(key, []).append(value / seconds)
        rows.setdefault("push_ms_median", []).append(1000 * float(np.median(push_wall)))
        rows.setdefault("push_ms_p99", []).append(1000 * float(np.percentile(push_wall, 99)))
    return {k: statistics.median(v) for k, v in rows.items()}


def resampler_holdback(rate: int) -> tuple[float, float]:
    """(median, max) ms of input not yet out of the resampler, 20 ms pushes of 3 s."""
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * rate).astype(np.float32)
    r, got, lag = StreamResampler(), 0, []
    for i in range(0, len(x), rate // 50):
        got += len(r.push(x[i : i + rate // 50], rate))
        lag.append(min(i + rate // 50, len(x)) / rate - got / SAMPLE_RATE)
    return 1000 * float(np.median(lag)), 1000 * float(np.max(lag))


def accuracy(data) -> dict[str, tuple[float, float, float]]:
    """name -> (phone accuracy, viseme accuracy, agreement with the full decode)."""
    full = [recognizer.recognize_whole(a) for a, _, _ in data]
    out = {}
    for lookahead in LOOKAHEADS:
        phone, vis, agree = [], [], []
        for (a, truth, _), f in zip(data, full, strict=True):
            r = recognizer.PhoneRecognizer(lookahead)
            ids = np.concatenate([r.push(a), r.flush(frames_covering(len(a)))])
            phone.append(ids == truth)
            vis.append(VIS[ids] == VIS[truth])
            agree.append(ids == f)
        out[f"streaming, look-ahead {lookahead}"] = tuple(
            float(np.mean(np.concatenate(x))) for x in (phone, vis, agree)
        )
    truths = np.concatenate([t for _, t, _ in data])
    f = np.concatenate(full)
    out["full decode (no look-ahead limit)"] = (
        float(np.mean(f == truths)),
        float(np.mean(VIS[f] == VIS[truths])),
        1.0,
    )
    sil = np.full_like(truths, SIL_ID)
    out["baseline: always SIL"] = (
        float(np.mean(sil == truths)),
        float(np.mean(VIS[sil] == VIS[truths])),
        float("nan"),
    )
    return out


def calibrate(n: int) -> str:
    """The mean cepstral mean pocketsphinx ends with on training-voice utterances."""
    vecs = []
    for a, _, _ in corpus(n, TRAIN_VOICES, seed=1):
        d = recognizer.RecognizerConfig().decoder()
        d.set_cmn(MODEL_DEFAULT_CMN)
        d.start_utt()
        d.process_raw(recognizer._to_int16(a), False, False)
        d.end_utt()
        vecs.append([float(v) for v in d.get_cmn(False).split(",")])
    return ",".join(f"{v:.2f}" for v in np.mean(vecs, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=48, help="held-out utterances scored")
    parser.add_argument("--runs", type=int, default=5, help="repeats of the CPU measurement")
    parser.add_argument("--calibrate", action="store_true", help="print INITIAL_CMN and stop")
    args = parser.parse_args()
    if args.calibrate:
        print(f'INITIAL_CMN = "{calibrate(24)}"')
        return

    data = corpus(args.sentences, HELD_OUT_VOICES, seed=12345)
    speech = np.concatenate([a for a, _, _ in data])[: 30 * SAMPLE_RATE]  # 30 s
    cost = cpu_costs(speech, args.runs)
    lines = [
        "### CPU",
        "",
        f"{len(speech) / SAMPLE_RATE:.0f} s of held-out speech; CPU seconds per second of "
        f"audio (share of one core), median of {args.runs} runs.",
        "",
        "| part | CPU s / audio s |",
        "|---|---|",
    ]
    for k, v in cost.items():
        if not k.startswith("push_ms"):
            lines.append(f"| {k} | {v:.4f} ({100 * v:.1f}%) |")
    lines += ["", f"One 20 ms push takes {cost['push_ms_median']:.2f} ms (median), "
              f"{cost['push_ms_p99']:.2f} ms (99th percentile), wall time.", ""]  # fmt: skip

    lines += [
        "### Look-ahead",
        "",
        "Frame t (audio [t/30, (t+1)/30) s) is emitted when the 16 kHz stream reaches the end "
        "of frame t + look-ahead.",
        "",
        "| input | look-ahead (frames) | ms past the frame's end |",
        "|---|---|---|",
    ]
    for name, frames in (
        ("log-mel window (16 × 80)", audio.MEL_LOOKAHEAD),
        ("prosody (loudness, voicing, pitch)", audio.PROSODY_LOOKAHEAD),
        ("phoneme id (default)", audio.PHONEME_LOOKAHEAD),
        ("front end (all inputs)", audio.AudioFrontEnd().lookahead),
    ):
        lines.append(f"| {name} | {frames} | {1000 * frames / 30:.0f} |")
    lines += ["", "Resampler hold-back (input not yet out of soxr HQ, 20 ms pushes), added to "
              "the look-ahead for input not at 16 kHz:", "",
              "| input rate | median ms | max ms |", "|---|---|---|"]  # fmt: skip
    for rate in (8_000, 11_025, 22_050, 24_000, 32_000, 44_100, 48_000):
        med, mx = resampler_holdback(rate)
        lines.append(f"| {rate} | {med:.1f} | {mx:.1f} |")

    acc = accuracy(data)
    voices = sorted({v for _, _, v in data})
    n_frames = sum(len(t) for _, t, _ in data)
    lines += ["", "### Phone recognition", "",
              f"{len(data)} sentences ({n_frames} frames, "
              f"{sum(len(a) for a, _, _ in data) / SAMPLE_RATE:.0f} s) in the "
              f"{len(voices)} held-out voices of training/tts.py (none used for tuning): "
              f"{', '.join(voices)}. Frame-level, against espeak-ng's phone events; viseme = "
              "engine/phonemes.py's 15 classes.", "",
              "| recognizer | phone acc. | viseme acc. | same id as the full decode |",
              "|---|---|---|---|"]  # fmt: skip
    for name, (p, v, a) in acc.items():
        lines.append(f"| {name} | {p:.3f} | {v:.3f} | {a:.3f} |")
    body = "\n".join(lines)
    print(body)
    write_section("audio", "Audio front end (engine/audio.py)", body)


if __name__ == "__main__":
    main()
