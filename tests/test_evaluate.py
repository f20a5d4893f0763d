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
    assert gt["lip_movement"] == 1.0 and np.isfinite(gt["lip_loudness_r_late15"])
    assert gt["emotion_acc_means"] == 1.0 and "performer_emotion_acc" in rows["SAAS"]
    assert "emotion_acc_means" in rows["expression only"]
    assert "performer_emotion_acc" not in rows["expression only"]
    arrays = result["arrays"]  # what style_study.py reads
    assert list(arrays["names"]) == list(rows)[1:]
    for k, name in enumerate(arrays["names"]):
        assert arrays[f"system{k}_features"].shape == (8, 174)
        assert (f"system{k}_codes" in arrays) == ("retrieval_style" in rows[name])
    assert arrays["pool_features"].shape == (8, 174) and len(arrays["pool_performer"]) == 8
    assert rows["StyleTalk"]["lip_movement"] > 0.0  # untrained, but its mouth moves
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


def test_references_come_from_the_whole_pool_and_never_from_the_utterance():
    rng = np.random.default_rng(0)
    pool = [_utterance(i, rng) for i in range(12)]  # style_id = i % 4
    utts = pool[::6]  # a subsample: indices 0 and 6, style 0 and 2
    refs, kinds = ev.reference_indices(utts, pool)
    for u, r in zip(utts, refs, strict=True):
        assert pool[r].index != u.index and pool[r].style_id == u.style_id
    assert kinds["same style"] == 2
    alone = [_utterance(0, rng)]
    with pytest.raises(ev.InputError):
        ev.reference_indices(alone)


def test_style_accuracy_is_fitted_on_pool_clips_outside_the_scored_fold():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 10)
    feats = rng.normal(size=(40, 6)) + 8.0 * np.eye(6)[labels]  # separable classes
    ids = np.arange(40)
    assert ev.style_accuracy(feats, labels, ids, feats, labels, ids) == 1.0
    noise = rng.normal(size=(40, 6))  # "generated" motion that carries no style
    assert ev.style_accuracy(noise, labels, ids, feats, labels, ids) < 0.6
    # a subsample scored against the whole pool: clips of every class stay in the fit set
    some = ids % 5 == 0
    assert ev.style_accuracy(feats[some], labels[some], ids[some], feats, labels, ids) == 1.0


def test_mean_face_is_a_still_reference():
    rng = np.random.default_rng(2)
    u = _utterance(0, rng)
    face = ev.MeanFace(np.full(52, 0.1, np.float32), np.zeros(6, np.float32))
    expr, pose = face.generate(u, face.code(u.motion), 0)
    assert expr.shape == (u.frames, 52) and pose.shape == (u.frames, 6)
    assert float(np.ptp(expr, axis=0).max()) == 0.0
    result = ev.evaluate([u, _utterance(1, rng)], [face], load_avatar("default").rig)
    row = result["rows"][face.name]
    assert row["lip_movement"] < 1e-5 and np.isnan(row["lip_loudness_r"])
    assert "lips still" in ev.markdown_table(result)


def test_labelled_checkpoints_are_checked(tmp_path):
    with pytest.raises(ev.InputError, match="LABEL=CHECKPOINT_DIR"):
        ev.parse_labelled(["no-equals-sign"], "--ablation")
    with pytest.raises(ev.InputError, match=r"no model\.safetensors"):
        ev.parse_labelled([f"x={tmp_path}"], "--system")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert ev.parse_labelled([f" SAAS mel ={tmp_path}"], "--system") == [("SAAS mel", tmp_path)]


def test_rows_merge_only_under_the_same_protocol(tmp_path):
    proto = {"corpus": "/c", "split": "test", "every": 3, "seed": 0, "rig": "abc"}
    earlier = {"protocol": proto, "rows": {"ground truth (reference)": {"m_lvd_mm": 9.0},
                                           "SAAS, retrained": {"m_lvd_mm": 3.5}}}  # fmt: skip
    path = tmp_path / "results.json"
    ev.save_json(earlier, path)
    now = {"protocol": dict(proto), "rows": {"ground truth (reference)": {"m_lvd_mm": 0.0}}}
    assert ev.merge_rows(now, path) == ["SAAS, retrained"]
    assert now["rows"]["ground truth (reference)"]["m_lvd_mm"] == 0.0  # this run's kept
    assert list(now["rows"]) == ["ground truth (reference)", "SAAS, retrained"]
    other_rig = {"protocol": {**proto, "rig": "def"}, "rows": {}}
    with pytest.raises(ev.InputError, match="rig"):
        ev.merge_rows(other_rig, path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ev.InputError, match=r"not a results\.json"):
        ev.merge_rows(now, tmp_path / "bad.json")
    again = {"protocol": dict(proto), "rows": {"SAAS, retrained": {"m_lvd_mm": 3.0}}}
    added = ev.merge_rows(again, path, {"SAAS, retrained": "SAAS v1", "absent": "x"})
    assert added == ["ground truth (reference)", "SAAS v1"]  # the earlier row, renamed
    assert again["rows"]["SAAS v1"]["m_lvd_mm"] == 3.5
    assert again["rows"]["SAAS, retrained"]["m_lvd_mm"] == 3.0


def test_rows_merge_only_with_the_same_judge_weights(tmp_path):
    """The sync judge is compared by its weights where both files recorded them (a judge
    retrained in the same folder must not merge), by its folder alone with older files."""
    proto = {"corpus": "/c", "split": "test", "sync": "/runs/st", "rig": "abc"}
    path = tmp_path / "results.json"
    ev.save_json({"protocol": {**proto, "sync_weights": "111"}, "rows": {"A": {}}}, path)
    with pytest.raises(ev.InputError, match="sync_weights"):
        ev.merge_rows({"protocol": {**proto, "sync_weights": "222"}, "rows": {}}, path)
    assert ev.merge_rows({"protocol": {**proto, "sync_weights": "111"}, "rows": {}}, path) == ["A"]
    assert ev.merge_rows({"protocol": dict(proto), "rows": {}}, path) == ["A"]  # older file
    with pytest.raises(ev.InputError, match="sync"):
        ev.merge_rows({"protocol": {**proto, "sync": "/runs/other"}, "rows": {}}, path)
    with pytest.raises(ev.InputError, match="no protocol"):
        ev.merge_rows({"rows": {}}, path)


def test_protocol_names_the_judge_by_its_weights(tmp_path):
    from stylecast.cli.eval import sync_weights_id

    folder = tmp_path / "run" / "sync" / "last"
    folder.mkdir(parents=True)
    assert sync_weights_id(tmp_path / "run") is None  # no judge there
    (folder / "model.safetensors").write_bytes(b"judge one")
    first = sync_weights_id(tmp_path / "run")
    (folder / "model.safetensors").write_bytes(b"judge two")
    assert len(first) == 12 and sync_weights_id(tmp_path / "run") != first


def test_the_baseline_row_can_be_left_out():
    assert [s.name for s in ev.load_systems(None, None)] == ["baseline (visemes)"]
    assert ev.load_systems(None, None, baseline=False) == []


def test_rename_arguments():
    from stylecast.cli.eval import _renames

    got = _renames(["StyleTalk=StyleTalk v1", "SAAS, Δ = 0 (knock-out)=>SAAS v1, Δ = 0"])
    assert got == {"StyleTalk": "StyleTalk v1", "SAAS, Δ = 0 (knock-out)": "SAAS v1, Δ = 0"}
    with pytest.raises(ev.InputError, match="OLD=NEW"):
        _renames(["no separator"])
