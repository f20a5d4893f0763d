"""Export: the graphs and manifest `stylecast export` writes, and their parity with PyTorch
(300 streamed frames with state carried, batch 1 and 8; sampled pose codes identical)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from stylecast.cli import main  # noqa: E402
from stylecast.engine.errors import BackendError, FormatError, InputError  # noqa: E402
from stylecast.engine.onnx_manifest import BATCH, load_manifest, sha256_file  # noqa: E402
from stylecast.export.graphs import carried_fields  # noqa: E402
from stylecast.export.onnx_export import check_export, export_model  # noqa: E402
from stylecast.models.checkpoint import save_model  # noqa: E402
from stylecast.models.config import config_from_dict, saas_config, styletalk_config  # noqa: E402
from stylecast.models.saas import SAAS  # noqa: E402
from stylecast.models.styletalk import StyleTalk  # noqa: E402

FRAMES = 300
TOLERANCE = 1e-4
MODELS = {
    "saas-mel": lambda: SAAS(saas_config("tiny", "mel")),
    "saas-phoneme": lambda: SAAS(saas_config("tiny", "phoneme")),
    "styletalk-phoneme": lambda: StyleTalk(styletalk_config("tiny", "phoneme")),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads spin against each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (torch model, checkpoint folder, export folder), exported by the CLI."""
    torch.manual_seed(0)
    out = {}
    for name, make in MODELS.items():
        model = make().eval()
        root = tmp_path_factory.mktemp(name)
        save_model(root / "ckpt", model, model.cfg, {"note": "random init"})
        assert main(["export", str(root / "ckpt"), "-o", str(root / "onnx")]) == 0
        out[name] = (model, root / "ckpt", root / "onnx")
    return out


def feed_dtype(dtype: str):
    return {"float32": np.float32, "int64": np.int64, "bool": np.bool_}[dtype]


@pytest.mark.parametrize("name", list(MODELS))
def test_manifest_names_what_the_graphs_take(exported, name):
    model, ckpt, folder = exported[name]
    manifest = load_manifest(folder)
    assert manifest.model == type(model).__name__
    assert manifest.lookahead_frames == model.cfg.lookahead_frames
    assert manifest.source["sha256"]["model.safetensors"] == sha256_file(ckpt / "model.safetensors")
    assert config_from_dict(manifest.config) == model.cfg
    assert [s.name for s in manifest.state] == list(carried_fields(model))
    assert {s.name: s.batch_axis for s in manifest.state if s.batch_axis} == (
        {f: 1 for f in ("can_h", "can_c", "sty_h", "sty_c")} if isinstance(model, SAAS) else {}
    )
    expected = {"step", "style"} | (
        {"pose_token", "pose_decode"} if isinstance(model, SAAS) else set()
    )
    assert set(manifest.graphs) == expected
    for key, spec in manifest.graphs.items():
        proto = onnx.load(str(folder / spec.file))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
        session = ort.InferenceSession(str(folder / spec.file), providers=["CPUExecutionProvider"])
        for declared, actual in ((spec.inputs, session.get_inputs()),
                                 (spec.outputs, session.get_outputs())):  # fmt: skip
            assert [t.name for t in declared] == [a.name for a in actual], key
            for t, a in zip(declared, actual, strict=True):
                assert t.shape.count(BATCH) == 1, (key, t)  # exactly one dynamic axis
                assert [d for d in t.shape if d != BATCH] == [
                    d for d in a.shape if isinstance(d, int)
                ], (key, t.name, a.shape)
    # No state input shares a name with an output (the exporter would rename it).
    step = manifest.graphs["step"]
    assert not {t.name for t in step.inputs} & {t.name for t in step.outputs}


def stream_both(model, folder, batch: int, seed: int = 0):
    """Stream FRAMES frames through torch's step and the raw step graph, each carrying its
    own state; returns (max |diff| of expr and pose, torch tokens, onnx tokens) per frame."""
    manifest = load_manifest(folder)
    session = ort.InferenceSession(str(folder / "step.onnx"), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    style = torch.randn(batch, manifest.style_dim, generator=gen)
    ref = model.init_state(batch, style)
    state = {s.input: np.moveaxis(getattr(ref, s.name).numpy(), 0, 0) for s in manifest.state}
    content = model.cfg.content
    worst, tokens_ref, tokens_got = 0.0, [], []
    for _ in range(FRAMES):
        if content.frontend == "phoneme":
            x = torch.randint(0, content.n_phonemes, (batch,), generator=gen)
        else:
            x = torch.randn(batch, content.mel_frames, content.n_mels, generator=gen) * 2
        feeds = {"features": x.numpy(), "style": style.numpy(), **state}
        if manifest.noise_dim:
            u = torch.rand(batch, generator=gen)
            ref = ref._replace(uniform=u)
            feeds["uniform"] = u.numpy()
        with torch.no_grad():
            out = model.step(x, ref)
        ref = out.state
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                       strict=True))  # fmt: skip
        for a, b in ((out.expr, got["expr"]), (out.pose, got["pose"])):
            assert a.shape == b.shape
            worst = max(worst, float(np.abs(a.numpy() - b).max()))
        state = {s.input: got[s.output] for s in manifest.state}
        if isinstance(model, SAAS):
            tokens_ref.append(ref.tokens.numpy())
            tokens_got.append(got["state_out_tokens"])
    return worst, tokens_ref, tokens_got


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", list(MODELS))
def test_step_graph_streams_like_torch(exported, name, batch):
    model, _, folder = exported[name]
    worst, tokens_ref, tokens_got = stream_both(model, folder, batch)
    assert worst <= TOLERANCE, worst
    for t, (a, b) in enumerate(zip(tokens_ref, tokens_got, strict=True)):
        assert np.array_equal(a, b), f"pose codes differ at frame {t}"
    if tokens_ref:  # codes were really drawn (not only start tokens)
        assert (tokens_ref[-1] < model.cfg.pose.codebook_size).all()


def test_pose_token_graph_draws_torchs_codes(exported):
    model, _, folder = exported["saas-mel"]
    session = ort.InferenceSession(str(folder / "pose_token.onnx"),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    p = model.cfg.pose
    gen = torch.Generator().manual_seed(3)
    n = 256
    tokens = torch.randint(0, p.codebook_size + 1, (n, p.context_tokens), generator=gen)
    audio = torch.randn(n, p.audio_frames, model.cfg.expression.d_audio, generator=gen)
    style = torch.randn(n, model.cfg.style_dim, generator=gen)
    uniform = torch.rand(n, generator=gen)
    feeds = {"tokens": tokens, "audio": audio, "style": style, "uniform": uniform}
    logits, codes = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        ref_logits = model.pose_predictor(tokens, audio, style)
        ref_codes = model.next_pose_token(tokens, audio, style, uniform)
    assert np.abs(ref_logits.numpy() - logits).max() <= TOLERANCE
    assert np.array_equal(ref_codes.numpy(), codes)
    assert len(set(codes.tolist())) > 3  # the uniforms really pick different codes

    decode = ort.InferenceSession(str(folder / "pose_decode.onnx"),
                                  providers=["CPUExecutionProvider"])  # fmt: skip
    (chunk,) = decode.run(None, {"codes": codes})
    with torch.no_grad():
        ref_chunk = model.pose_vq.decode_indices(ref_codes[:, None])
    assert chunk.shape == (n, p.frames_per_token, model.cfg.motion.n_pose)
    assert np.abs(ref_chunk.numpy() - chunk).max() <= TOLERANCE


@pytest.mark.parametrize("name", ["saas-mel", "styletalk-phoneme"])
def test_style_graph_matches_torch_for_padded_clips(exported, name):
    model, _, folder = exported[name]
    manifest = load_manifest(folder)
    session = ort.InferenceSession(str(folder / "style.onnx"), providers=["CPUExecutionProvider"])
    frames = manifest.style_frames
    gen = torch.Generator().manual_seed(4)
    lengths = torch.tensor([1, 5, 17, 30, frames // 2, frames - 3, frames, 40])
    clip = torch.randn(8, frames, manifest.n_motion, generator=gen)
    valid = torch.arange(frames)[None] < lengths[:, None]
    (codes,) = session.run(None, {"clip": clip.numpy(), "valid": valid.numpy()})
    with torch.no_grad():
        if isinstance(model, SAAS):
            ref = model.extract_style(clip, valid).code
        else:
            ref = model.encode_style(clip, valid)
    assert np.abs(ref.numpy() - codes).max() <= TOLERANCE
    # Each row alone gives its row of the batch (a session's code does not depend on others).
    for i in range(8):
        (alone,) = session.run(None, {"clip": clip[i : i + 1].numpy(),
                                      "valid": valid[i : i + 1].numpy()})  # fmt: skip
        assert np.abs(alone[0] - codes[i]).max() <= TOLERANCE


def test_neutral_style_is_listed(exported):
    model, _, folder = exported["styletalk-phoneme"]
    manifest = load_manifest(folder)
    frames = manifest.style_frames
    with torch.no_grad():
        ref = model.encode_style(torch.zeros(1, frames, 58), torch.ones(1, frames, dtype=bool))
    assert np.allclose(manifest.styles["neutral"], ref[0].numpy(), atol=1e-6)


def test_check_export_catches_a_graph_from_other_weights(exported, tmp_path):
    torch.manual_seed(7)
    other = MODELS["styletalk-phoneme"]().eval()
    export_model(other, tmp_path, check=False)
    model, _, _ = exported["styletalk-phoneme"]
    with pytest.raises(BackendError, match="differ from PyTorch"):
        check_export(model, tmp_path)


def test_export_refuses_what_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "checkpoint must be a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "o"), "--style", "happy"]) == 2


def test_style_clips_become_named_codes(exported, tmp_path):
    from stylecast.engine.motion import Motion, save_motion
    from stylecast.export.onnx_export import export_checkpoint

    _, ckpt, _ = exported["styletalk-phoneme"]  # SAAS's untrained codebook is coarse
    rng = np.random.default_rng(0)
    save_motion(tmp_path / "happy.npz", Motion(rng.random((40, 52)), rng.normal(0, 0.05, (40, 6))))
    manifest = export_checkpoint(
        ckpt, tmp_path / "out", style_motions={"happy": tmp_path / "happy.npz"}
    )
    assert set(manifest["styles"]) == {"neutral", "happy"}
    assert not np.allclose(manifest["styles"]["neutral"], manifest["styles"]["happy"])
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["styles"] == manifest["styles"]


def test_tampered_graph_is_refused(exported, tmp_path):
    import shutil

    _, _, folder = exported["styletalk-phoneme"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with open(copy / "step.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(FormatError, match="sha256"):
        load_manifest(copy)
    with pytest.raises(FormatError, match=r"no manifest\.json"):
        load_manifest(tmp_path)
    with pytest.raises(InputError):
        load_manifest(tmp_path / "nowhere")
