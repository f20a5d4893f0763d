"""The ONNX Runtime motion backend: the session's MotionModel contract, parity with the
PyTorch step over 300 frames (batch 1 and 8), providers, the registry, a live session."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from stylecast.engine.backends import load_backend
from stylecast.engine.baseline import BaselineMotion
from stylecast.engine.errors import BackendError, FormatError, InputError
from stylecast.engine.face import N_EXPR, N_POSE
from stylecast.engine.motion_backend import (
    MotionInputs,
    check_step,
    silence_inputs,
    split_state,
    stack_inputs,
    stack_states,
)
from stylecast.engine.onnx_backend import OnnxMotion, choose_providers

torch = pytest.importorskip("torch")

from stylecast.export.onnx_export import export_model  # noqa: E402
from stylecast.models.config import saas_config, styletalk_config  # noqa: E402
from stylecast.models.saas import SAAS  # noqa: E402
from stylecast.models.styletalk import StyleTalk  # noqa: E402

FRAMES = 300
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (torch model, exported folder) for tiny SAAS (mel) and StyleTalk (phoneme)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    out = {}
    for name, model in (
        ("saas", SAAS(saas_config("tiny", "mel"))),
        ("styletalk", StyleTalk(styletalk_config("tiny", "phoneme"))),
    ):
        folder = tmp_path_factory.mktemp(name)
        export_model(model.eval(), folder)
        out[name] = (model, folder)
    yield out
    torch.set_num_threads(threads)


def random_inputs(rng: np.random.Generator, batch: int, noise_dim: int) -> MotionInputs:
    return MotionInputs(
        mel=(rng.standard_normal((batch, 16, 80)) * 2).astype(np.float32),
        phonemes=rng.integers(0, 41, batch).astype(np.int64),
        prosody=rng.standard_normal((batch, 3)).astype(np.float32),
        noise=rng.random((batch, noise_dim), np.float32),
    )


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", ["saas", "styletalk"])
def test_backend_streams_like_torch(models, name, batch):
    model, folder = models[name]
    backend = OnnxMotion(folder)
    rng = np.random.default_rng(batch)
    style = rng.standard_normal((batch, backend.style_dim)).astype(np.float32)
    state = backend.init_state(batch)
    ref = model.init_state(batch, torch.from_numpy(style))
    worst = 0.0
    for t in range(FRAMES):
        inputs = random_inputs(rng, batch, backend.noise_dim)
        out = backend.step(inputs, style, state)
        check_step(backend, out, batch)
        state = out.state
        x = inputs.phonemes if model.cfg.content.frontend == "phoneme" else inputs.mel
        if backend.noise_dim:
            ref = ref._replace(uniform=torch.from_numpy(inputs.noise[:, 0]))
        with torch.no_grad():
            expected = model.step(torch.from_numpy(x), ref)
        ref = expected.state
        worst = max(worst, np.abs(out.expr - expected.expr.numpy()).max(),
                    np.abs(out.pose - expected.pose.numpy()).max())  # fmt: skip
        if name == "saas":  # the same pose codes drawn from the same uniforms
            assert np.array_equal(state["tokens"], ref.tokens.numpy()), t
            can_h = ref.can_h.numpy().transpose(1, 0, 2)  # graph (L, B, H) -> state (B, L, H)
            assert np.abs(state["can_h"] - can_h).max() <= TOLERANCE
    assert worst <= TOLERANCE, worst


def test_state_is_batch_first_and_rows_are_independent(models):
    _, folder = models["saas"]
    backend = OnnxMotion(folder)
    state = backend.init_state(3)
    assert "style" not in state and "uniform" not in state  # inputs every frame, not state
    assert state["can_h"].shape[0] == 3 and state["can_h"].ndim == 3  # (B, layers, H)
    assert (state["tokens"] == backend.manifest.config["fields"]["pose"]["codebook_size"]).all()
    rng = np.random.default_rng(5)
    style = rng.standard_normal((3, backend.style_dim)).astype(np.float32)
    singles = split_state(state, [1, 1, 1])
    for _ in range(20):
        inputs = random_inputs(rng, 3, 1)
        out = backend.step(inputs, style, state)
        rows = [
            backend.step(
                stack_inputs([MotionInputs(*(a[i : i + 1] for a in inputs))]),
                style[i : i + 1],
                singles[i],
            )
            for i in range(3)
        ]
        assert np.abs(np.concatenate([r.expr for r in rows]) - out.expr).max() <= 1e-5
        assert np.abs(np.concatenate([r.pose for r in rows]) - out.pose).max() <= 1e-5
        state, singles = out.state, [r.state for r in rows]
        joined = stack_states(singles)
        assert np.array_equal(joined["tokens"], state["tokens"])


def test_silence_gives_valid_motion(models):
    for name in models:
        backend = OnnxMotion(models[name][1])
        state = backend.init_state(2)
        style = np.stack([backend.style_code("neutral")] * 2)
        for _ in range(12):
            out = backend.step(
                silence_inputs(2, np.full((2, backend.noise_dim), 0.3)), style, state
            )
            state = out.state
        assert out.expr.shape == (2, N_EXPR) and out.pose.shape == (2, N_POSE)
        assert ((out.expr >= 0) & (out.expr <= 1)).all() and np.isfinite(out.pose).all()
        assert backend.lookahead == models[name][0].cfg.lookahead_frames


def test_style_codes_come_from_the_style_graph(models):
    model, folder = models["styletalk"]
    backend = OnnxMotion(folder)
    rng = np.random.default_rng(2)
    expr, pose = rng.random((50, 52)), rng.normal(0, 0.05, (50, 6))
    code = backend.add_style("mine", expr, pose)
    with torch.no_grad():
        clip = torch.from_numpy(np.concatenate([expr, pose], 1).astype(np.float32))[None]
        ref = model.encode_style(clip, torch.ones(1, 50, dtype=torch.bool))[0].numpy()
    assert np.abs(code - ref).max() <= TOLERANCE
    assert np.array_equal(backend.style_code("mine"), code)
    with pytest.raises(InputError, match="unknown style 'nope'"):
        backend.style_code("nope")
    with pytest.raises(InputError, match="style clip"):
        backend.extract_style(expr[:10], pose[:9])


def test_missing_provider_falls_back_with_a_message(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers("cuda", ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider was requested" in caplog.text
    assert "falling back to CPUExecutionProvider" in caplog.text
    with pytest.raises(BackendError, match="TensorrtExecutionProvider was requested"):
        choose_providers("tensorrt", ["CPUExecutionProvider"], strict=True)
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("tensorrt", everything) == everything
    with pytest.raises(InputError, match="unknown execution provider"):
        choose_providers("npu", ["CPUExecutionProvider"])


def test_registry_builds_backends_by_name(models):
    _, folder = models["styletalk"]
    assert isinstance(load_backend("baseline"), BaselineMotion)
    backend = load_backend(f"onnx-cpu:{folder}")
    assert isinstance(backend, OnnxMotion) and backend.name == "styletalk-onnxruntime"
    cuda = load_backend(f"onnx-cuda:{folder}")  # falls back to the CPU here, with a warning
    assert cuda.providers[-1] == "CPUExecutionProvider"
    with pytest.raises(InputError, match="unknown motion backend"):
        load_backend("torch")
    with pytest.raises(FormatError, match=r"no manifest\.json"):
        load_backend(f"onnx-cpu:{folder.parent}")


@pytest.mark.tensorrt
def test_tensorrt_engines_match_onnxruntime(models):
    pytest.importorskip("tensorrt")
    from stylecast.engine.tensorrt_backend import TensorRTMotion

    _, folder = models["saas"]
    trt_model, ort_model = TensorRTMotion(folder, max_batch=8), OnnxMotion(folder)
    rng = np.random.default_rng(0)
    style = rng.standard_normal((4, ort_model.style_dim)).astype(np.float32)
    a, b = trt_model.init_state(4), ort_model.init_state(4)
    for _ in range(30):
        inputs = random_inputs(rng, 4, 1)
        x, y = trt_model.step(inputs, style, a), ort_model.step(inputs, style, b)
        a, b = x.state, y.state
        assert np.abs(x.expr - y.expr).max() < 2e-2  # fp16


def test_tensorrt_backend_says_what_is_missing(models):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="tensorrt Python package"):
            load_backend(f"tensorrt:{models['saas'][1]}")
    else:
        pytest.skip("tensorrt is installed here")


async def test_a_motion_only_session_runs_on_the_onnx_backend(models):
    from stylecast.engine.scheduler import Scheduler
    from stylecast.engine.session import Session, SessionConfig

    backend = OnnxMotion(models["saas"][1])
    scheduler = Scheduler(backend, "manual")
    session = Session(None, "neutral", SessionConfig(video=False), scheduler)
    assert session.model is backend
    await session.start()
    t = np.arange(16_000) / 16_000
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )
    session.push_audio(speech, 16_000)
    session.end_segment()
    frames = []
    for _ in range(45):
        scheduler.tick()
        frames.append(await session.__anext__())
    await session.aclose()
    expr = np.stack([f.motion.expr for f in frames])
    pose = np.stack([f.motion.pose for f in frames])
    assert expr.shape == (45, N_EXPR) and ((expr >= 0) & (expr <= 1)).all()
    assert np.isfinite(pose).all()
    assert np.abs(np.diff(expr, axis=0)).max() > 0  # the model's output moves with the audio
    assert [f.index for f in frames] == list(range(45))


def test_style_library_codes_made_with_these_weights_are_named_styles(models, tmp_path):
    import json

    from stylecast.export.onnx_export import export_checkpoint
    from stylecast.models.checkpoint import save_model

    model, _ = models["styletalk"]
    save_model(tmp_path / "ckpt", model, model.cfg)
    manifest = export_checkpoint(tmp_path / "ckpt", tmp_path / "onnx")
    weights = manifest["source"]["sha256"]["model.safetensors"][:12]
    library = tmp_path / "styles"
    library.mkdir()
    code = np.arange(model.cfg.d_model, dtype=np.float32) / 100
    for name, made_for in (("calm", weights), ("stale", "0" * 12)):
        meta = {"name": name, "codes": {"styletalk": code.tolist()},
                "models": {"styletalk": made_for}}  # fmt: skip
        (library / f"{name}.json").write_text(json.dumps(meta))
    (library / "broken.json").write_text("{")
    backend = OnnxMotion(tmp_path / "onnx", styles_dir=library)
    assert set(backend.styles) == {"neutral", "calm"}  # other weights' codes are skipped
    assert np.array_equal(backend.style_code("calm"), code)


@pytest.mark.parametrize("key", ["saas", "styletalk"])
def test_shipped_exports_load_step_and_match_their_checkpoints(key):
    from stylecast.engine.onnx_manifest import sha256_file
    from stylecast.paths import assets_dir

    folder = assets_dir() / "onnx" / key
    if not (folder / "manifest.json").exists():
        pytest.skip(f"no shipped export in {folder}")
    backend = load_backend(f"onnx-cpu:{folder}")
    assert backend.lookahead == backend.manifest.lookahead_frames
    state = backend.init_state(2)
    style = np.stack([backend.style_code("neutral")] * 2)
    for _ in range(backend.lookahead + 10):
        out = backend.step(silence_inputs(2, np.full((2, backend.noise_dim), 0.5)), style, state)
        state = out.state
    assert ((out.expr >= 0) & (out.expr <= 1)).all() and np.isfinite(out.pose).all()
    weights = assets_dir() / "models" / key / "model.safetensors"
    if weights.exists():  # the shipped graphs were exported from the shipped weights
        assert backend.manifest.source["sha256"]["model.safetensors"] == sha256_file(weights)


def test_extract_style_matches_the_style_library_encoder(models, tmp_path):
    """The server's upload codes equal `stylecast style add`'s (training/style_library.py)
    for the same weights, also for a clip longer than the style graph's window."""
    from stylecast.export.onnx_export import export_checkpoint
    from stylecast.models.checkpoint import save_model
    from stylecast.training.style_library import StyleEncoders

    model, _ = models["styletalk"]
    save_model(tmp_path / "models" / "styletalk", model, model.cfg)
    export_checkpoint(tmp_path / "models" / "styletalk", tmp_path / "onnx")
    backend = OnnxMotion(tmp_path / "onnx", styles_dir=tmp_path / "none")
    encoders = StyleEncoders(tmp_path / "models", keys=("styletalk",))
    assert backend.weights_id == encoders.ids["styletalk"]
    rng = np.random.default_rng(3)
    frames = backend.manifest.style_frames + 40  # two chunks
    expr, pose = rng.random((frames, 52)), rng.normal(0, 0.05, (frames, 6))
    want = encoders.encode(np.concatenate([expr, pose], 1).astype(np.float32))["styletalk"]
    assert np.abs(backend.extract_style(expr, pose) - want).max() <= TOLERANCE
