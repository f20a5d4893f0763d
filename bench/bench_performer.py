"""Benchmark of the procedural performer: are styles told apart from motion alone, on
sentences never seen when fitting? And what does a second of speech cost?

    python -m bench.bench_performer [--runs 3] [--train 4] [--test 2]

For every style, the performer speaks `--train` sentences (fit) and `--test` other
sentences (scored); a shrunk LDA on per-clip motion statistics (training/style_probe.py)
predicts the performer (48 classes), the emotion (8) and the style id (1152). Speech is
espeak-ng (training/tts.py) with a different voice per sentence. Several runs draw
different sentences; the medians are written to the "performer" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.report import write_section
from stylecast.training import prosody
from stylecast.training.style_probe import Speech, perform_speech, probe
from stylecast.training.styles import N_STYLES, all_styles, style


def tts_speech(n: int, seed: int) -> list[Speech]:
    from stylecast.training import tts
    from stylecast.training.sentences import generate_sentences

    rng = np.random.default_rng(seed)
    texts = generate_sentences(n=max(200, n), seed=seed)
    out = []
    for k in rng.choice(len(texts), n, replace=False):
        v = tts.TRAIN_VOICES[rng.integers(len(tts.TRAIN_VOICES))]
        utt = tts.synthesize(texts[k], v)
        nf = utt.n_frames
        out.append(
            Speech(
                utt.phones,
                nf,
                prosody.loudness_db(utt.audio, utt.sample_rate, nf),
                prosody.pitch_hz(utt.audio, utt.sample_rate, nf),
            )
        )
    return out


def cost_ms_per_second(speech: list[Speech]) -> float:
    """Median ms of performer time per second of speech, over styles and sentences."""
    times = []
    for sid in range(0, N_STYLES, 97):
        for sp in speech:
            start = time.perf_counter()
            perform_speech(sp, style(sid), 0)
            times.append((time.perf_counter() - start) * 1e3 / (sp.n_frames / 30))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train", type=int, default=4, help="sentences fitted per style")
    ap.add_argument("--test", type=int, default=2, help="other sentences scored per style")
    args = ap.parse_args()

    chosen = all_styles()
    results, costs, seconds = [], [], []
    for run in range(args.runs):
        speech = tts_speech(args.train + args.test, seed=100 + run)
        seconds.append(np.mean([s.n_frames / 30 for s in speech]))
        costs.append(cost_ms_per_second(speech))
        start = time.perf_counter()
        r = probe(chosen, speech[: args.train], speech[args.train :], seed=run)
        results.append(r)
        print(
            f"run {run}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.accuracy.items()),
            "dynamics only: " + ", ".join(f"{k} {v:.3f}" for k, v in r.dynamics_accuracy.items()),
            f"({r.n_train} fit / {r.n_test} scored clips, {time.perf_counter() - start:.0f} s)",
        )
    med = {k: statistics.median(r.accuracy[k] for r in results) for k in results[0].accuracy}
    dyn = {k: statistics.median(r.dynamics_accuracy[k] for r in results) for k in med}
    chance = results[0].chance
    lines = [
        f"{len(chosen)} styles (48 performers × 8 emotions × 3 intensities); per style "
        f"{args.train} sentences fitted and {args.test} other sentences scored; espeak-ng "
        f"speech, a random voice per sentence, {statistics.mean(seconds):.1f} s per sentence "
        f"on average. Features: per-channel mean, std and mean |velocity| of the 52 "
        f"expression and 6 pose channels; classifier: shrunk LDA "
        f"(`stylecast/training/style_probe.py`). Medians of {args.runs} runs with different "
        "sentences.",
        "",
        "| label | classes | chance | accuracy on unseen sentences | dynamics only (no means) |",
        "|---|---|---|---|---|",
    ]
    for k, acc in med.items():
        lines.append(
            f"| {k} | {round(1 / chance[k])} | {chance[k]:.4f} | {acc:.3f} | {dyn[k]:.3f} |"
        )
    lines += [
        "",
        f"Performer cost: {statistics.median(costs):.2f} ms per second of speech "
        "(one core, median over styles and sentences, prosody given).",
    ]
    body = "\n".join(lines)
    print(body)
    write_section("performer", "Procedural performer: style separability and cost", body)


if __name__ == "__main__":
    main()
