"""training/evaluate.py: the side-by-side evaluation on made-up utterances with tiny untrained
models (plumbing and bookkeeping; the metrics themselves are tested in test_metrics.py)."""

import numpy as np
import pytest
import torch

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import INDEX
from stylecast.models.config import saas_config, styletalk_config
from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk
from stylecast.training import evaluate as ev
from stylecast.training.timeline import Phone


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _utterance(i: int, rng) -> ev.EvalUtterance:
    frames = 48
    t = np.arange(frames * 16000 // 30) / 16000
    audio = (0.2 * np.sin(2 * np.pi * 150 * t) * (t > 0.4)).astype(np.float32)
    expr = np.zeros((frames, 52), np.float32)
    expr[:, INDEX["jawOpen"]] = 0.4 * (np.arange(frames) % 12 < 6)  # closes every 12 frames
    expr[:, INDEX["mouthSmileLeft"]] = 0.5 * (i % 2)  # emotion 1 smiles
    phones = (Phone("SIL", 0.0, 0.4), Phone("M", 0.4, 0.5), Phone("AA", 0.5, 1.6))
    return ev.EvalUtterance(
        index=i, mel=ev.mel_windows(audio), phonemes=rng.integers(0, 41, frames),
        prosody=ev.frame_prosody(audio, frames), phones=phones, expr=expr,
        pose=np.zeros((frames, 6), np.float32), style_id=i % 4,
        performer=i % 2, emotion=("happy", "sad")[i % 2], intensity=1,
    )  # fmt: skip


def test_every_system_gets_every_metric_and_references_exclude_the_utterance():
    rng = np.random.default_rng(0)
    utts = [_utterance(i, rng) for i in range(8)]
    refs, kinds = ev.reference_indices(utts)
    assert all(r != i and utts[r].style_id == utts[i].style_id for i, r in enumerate(refs))
    assert kinds["same style"] == 8
    torch.manual_seed(0)
    saas = SAAS(saas_config("tiny", "mel")).eval()
    systems = [
        ev.Baseline(),
        ev.StyleTalkSystem(StyleTalk(styletalk_config("tiny", "phoneme")).eval()),
        ev.SAASSystem(saas),
        ev.SAASSystem(saas, codebook=False, name="no codebook"),
        ev.SAASSystem(saas, name="expression only", pose=False),
    ]
    result = ev.evaluate(utts, systems, load_avatar("default").rig, None, pose_samples=2)
    rows = result["rows"]
    gt = rows["ground truth (reference)"]
    assert gt["m_lvd_mm"] == 0.0 and gt["closure"] == 1.0 and gt["bilabials"] == 8
    assert gt["emotion_acc"] == 1.0  # the smile separates the two emotions
    for name in ("baseline (visemes)", "StyleTalk", "SAAS", "no codebook"):
        assert rows[name]["m_lvd_mm"] > 0.0 and 0.0 <= rows[name]["closure"] <= 1.0
    assert rows["StyleTalk"]["pose_diversity"] == 0.0  # deterministic pose head
    assert rows["SAAS"]["pose_diversity"] > 0.0  # sampled pose codes
    assert "retrieval_style" in rows["SAAS"] and "retrieval_style" not in rows["baseline (visemes)"]
    assert (
        "pose_jerk" not in rows["expression only"] and "emotion_acc_expr" in rows["expression only"]
    )
    table = ev.markdown_table(result, {"SAAS retrained without HyperStyle": "not trained"})
    assert len(table.splitlines()) == 2 + 6 + 1 and "no style encoder" in table
    assert "pose not trained" in table


def test_hyperstyle_knockout_changes_only_the_style_offsets():
    torch.manual_seed(1)
    model = SAAS(saas_config("tiny", "mel")).eval()
    with torch.no_grad():
        model.expression.hyper.head_b.weight.normal_()  # as if trained: offsets != 0
    plain = ev.without_hyperstyle(model)
    style = torch.randn(1, model.cfg.style_dim)
    deltas = plain.expression.hyper(style)
    assert all(float(d.detach().abs().max()) == 0.0 for pair in deltas.values() for d in pair)
    assert float(model.expression.hyper.head_b.weight.abs().max()) > 0  # the original is kept
    feats = torch.full((1, 10, 16, 80), -4.0)
    assert not torch.allclose(model(feats, style), plain(feats, style))


def test_card_section_is_replaced_in_place(tmp_path):
    card = tmp_path / "card.md"
    card.write_text("# Card\n\n<!-- eval:begin -->\nold\n<!-- eval:end -->\n\ntail\n")
    ev.write_card_section(card, "new table")
    assert (
        card.read_text() == "# Card\n\n<!-- eval:begin -->\nnew table\n<!-- eval:end -->\n\ntail\n"
    )
    fresh = tmp_path / "fresh.md"
    ev.write_card_section(fresh, "t")
    assert "<!-- eval:begin -->\nt\n<!-- eval:end -->" in fresh.read_text()
