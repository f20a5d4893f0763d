"""training/curves.py: loss-curve summaries of a run folder."""

import json

from stylecast.training import curves


def test_summary_keeps_the_last_record_of_a_re_logged_step(tmp_path):
    stage = tmp_path / "style"
    stage.mkdir()
    records = [{"step": s, "seconds": s / 10, "loss": 10.0 - s / 10} for s in (10, 20, 30)]
    records.append({"step": 30, "seconds": 3.5, "loss": 1.0})  # resumed: step 30 again
    records.append({"step": 40, "seconds": 4.5, "loss": 0.5})
    (stage / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    s = curves.summarize(tmp_path, window=2)["style"]
    assert s["steps"] == 40 and s["seconds"] == 4.5
    first, last = s["losses"]["loss"]
    assert first == (9.0 + 8.0) / 2 and last == (1.0 + 0.5) / 2
    assert "| style | 40 |" in curves.markdown({"style": s})
