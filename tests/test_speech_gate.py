"""engine/speech_gate.py: a continuous microphone stream cut into speech segments."""

import numpy as np

from stylecast.engine.speech_gate import SpeechGate


def test_speech_gate_cuts_segments():
    rate = 16_000
    rng = np.random.default_rng(0)
    quiet = (rng.normal(0, 30, rate)).astype(np.int16)  # -60 dBFS room noise, 1 s
    loud = (np.sin(np.arange(rate) * 2 * np.pi * 200 / rate) * 8000).astype(np.int16)
    x = np.concatenate([quiet, loud, quiet, quiet])
    gate = SpeechGate()
    actions = []
    for i in range(0, len(x), 333):  # odd chunk sizes
        actions += gate.feed(x[i : i + 333], rate)
    kinds = [a[0] for a in actions]
    assert kinds.count("end") == 1 and kinds[-1] == "end"
    pushed = sum(len(a[1]) for a in actions if a[0] == "audio")
    # the loud second, 0.2 s before it and ~0.5 s of hangover after it
    assert 1.6 * rate <= pushed <= 1.8 * rate, pushed / rate
    assert gate.open is False
