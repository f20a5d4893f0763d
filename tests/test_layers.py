"""Shared model layers: attention pooling, dynamic FFN, vector quantiser, top-k sampling,
HyperStyle LSTM, frame encoders, windows."""

import pytest

torch = pytest.importorskip("torch")

from stylecast.models.config import ContentConfig  # noqa: E402
from stylecast.models.layers import (  # noqa: E402
    AttentionPooling,
    DynamicLinear,
    FrameEncoder,
    HyperStyle,
    ModulatedLSTM,
    VectorQuantizer,
    pad_sequence_ends,
    sample_top_k,
    sinusoidal_encoding,
    sliding_windows,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sinusoidal_encoding_is_bounded_and_distinct_per_position():
    table = sinusoidal_encoding(16, 8)
    assert table.shape == (16, 8)
    assert table.abs().max() <= 1.0
    assert torch.cdist(table, table).add(torch.eye(16)).min() > 0.01


def test_attention_pooling_ignores_padded_frames():
    torch.manual_seed(0)
    pool = AttentionPooling(8)
    h = torch.randn(2, 6, 8)
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    out = pool(h, valid)
    h2 = h.clone()
    h2[1, 3:] = 100.0  # padding content must not matter
    assert torch.allclose(out, pool(h2, valid))
    assert torch.allclose(out[1], pool(h[1:2, :3])[0], atol=1e-6)


def test_dynamic_linear_mixes_experts_with_weights_summing_to_one():
    torch.manual_seed(0)
    layer = DynamicLinear(4, 5, d_cond=3, n_experts=6, temperature=2.0, hidden=7)
    cond = torch.randn(2, 3)
    pi = layer.mixing_weights(cond)
    assert pi.shape == (2, 6)
    assert torch.allclose(pi.sum(-1), torch.ones(2))
    assert (pi > 0).all()
    x = torch.randn(2, 9, 4)
    expected = torch.stack(
        [
            sum(pi[b, k] * (x[b] @ layer.weight[k].T + layer.bias[k]) for k in range(6))
            for b in range(2)
        ]
    )
    assert torch.allclose(layer(x, cond), expected, atol=1e-5)
    # A different condition mixes differently.
    assert not torch.allclose(layer(x, cond), layer(x, cond.flip(0)))


def test_dynamic_linear_temperature_softens_the_mix():
    torch.manual_seed(0)
    sharp = DynamicLinear(4, 5, 3, 6, temperature=0.01, hidden=7)
    soft = DynamicLinear(4, 5, 3, 6, temperature=1000.0, hidden=7)
    soft.load_state_dict(sharp.state_dict())
    cond = torch.randn(3, 3)
    assert sharp.mixing_weights(cond).max() > 0.9
    assert torch.allclose(soft.mixing_weights(cond), torch.full((3, 6), 1 / 6), atol=1e-3)


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_vector_quantizer_codes_indices_codes_round_trip(update):
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 8, commitment=0.25, update=update).eval()
    indices = torch.randint(0, 32, (3, 5))
    codes = vq.lookup(indices)
    assert codes.shape == (3, 5, 8)
    assert torch.equal(vq.nearest(codes), indices)
    out = vq(codes + 1e-4 * torch.randn_like(codes))
    assert torch.equal(out.indices, indices)
    assert torch.allclose(out.quantized, codes, atol=1e-3)


def test_vector_quantizer_straight_through_and_commitment():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, commitment=0.25, update="ema").eval()
    z = torch.randn(10, 4, requires_grad=True)
    out = vq(z)
    q = vq.lookup(out.indices)
    assert torch.allclose(out.quantized, q, atol=1e-6)
    assert torch.allclose(out.loss, 0.25 * ((z - q) ** 2).sum() / 10)
    (out.quantized * torch.arange(4.0)).sum().backward()
    assert torch.allclose(z.grad, torch.arange(4.0).expand(10, 4))  # identity gradient


def test_vector_quantizer_learns_only_in_training_and_ignores_padding():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4, commitment=0.25, update="ema").eval()
    before = vq.codebook.clone()
    z = torch.randn(2, 6, 4)
    vq(z)
    assert torch.equal(vq.codebook, before)  # eval: frozen
    vq.train()
    valid = torch.tensor([[True] * 6, [False] * 6])
    vq(z, valid)
    assert not torch.equal(vq.codebook, before)
    # First batch initialises the codebook from valid vectors only.
    picked = torch.cdist(vq.codebook, z[0]).min(dim=1).values
    assert picked.max() < 0.5


def test_sample_top_k_is_deterministic_and_stays_in_the_top_k():
    torch.manual_seed(0)
    logits = torch.randn(4000, 10)
    u = torch.rand(4000)
    a = sample_top_k(logits, u, temperature=1.0, top_k=3)
    assert torch.equal(a, sample_top_k(logits, u, 1.0, 3))
    top3 = logits.topk(3).indices
    assert (top3 == a[:, None]).any(dim=1).all()
    # u -> 0 draws the most likely code.
    first = sample_top_k(logits, torch.zeros(4000), 1.0, 3)
    assert torch.equal(first, logits.argmax(-1))


def test_sample_top_k_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).expand(20000, 3)
    u = torch.rand(20000, generator=torch.Generator().manual_seed(1))
    draws = sample_top_k(logits, u, temperature=1.0, top_k=3)
    freq = torch.bincount(draws, minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.02)
    hot = sample_top_k(logits, u, temperature=0.05, top_k=3)
    assert (hot == 0).float().mean() > 0.99  # low temperature -> nearly greedy


def test_modulated_lstm_with_zero_offsets_is_torch_lstm():
    torch.manual_seed(0)
    ours = ModulatedLSTM(5, 7, 3)
    ref = torch.nn.LSTM(5, 7, 3, batch_first=True)
    with torch.no_grad():
        for i in range(3):
            getattr(ref, f"weight_ih_l{i}").copy_(ours.w_ih[i])
            getattr(ref, f"weight_hh_l{i}").copy_(ours.w_hh[i])
            getattr(ref, f"bias_ih_l{i}").copy_(ours.bias[i])
            getattr(ref, f"bias_hh_l{i}").zero_()
    x = torch.randn(2, 6, 5)
    h0, c0 = torch.randn(3, 2, 7), torch.randn(3, 2, 7)
    zero = {1: (torch.zeros(2, 28, 7), torch.zeros(2, 28, 7))}
    y, h, c = ours(x, h0, c0, zero)
    y_ref, (h_ref, c_ref) = ref(x, (h0, c0))
    assert torch.allclose(y, y_ref, atol=1e-6)
    assert torch.allclose(h, h_ref, atol=1e-6) and torch.allclose(c, c_ref, atol=1e-6)


def test_hyperstyle_is_identity_at_init_and_style_dependent_once_trained():
    torch.manual_seed(0)
    lstm = ModulatedLSTM(5, 6, 4)
    shapes = {i: (24, lstm.layer_shapes()[i][1], 6) for i in (1, 2)}
    hyper = HyperStyle(8, 16, shapes, rank=2)
    style = torch.randn(2, 8)
    deltas = hyper(style)
    assert set(deltas) == {1, 2}
    assert deltas[1][0].shape == (2, 24, 6) and deltas[1][1].shape == (2, 24, 6)
    assert all(d.abs().max() == 0 for pair in deltas.values() for d in pair)
    x, h0 = torch.randn(2, 5, 5), torch.zeros(4, 2, 6)
    plain = lstm(x, h0, h0, {})[0]
    assert torch.equal(lstm(x, h0, h0, deltas)[0], plain)
    torch.nn.init.normal_(hyper.head_b.weight, std=0.5)  # as after training
    y_a = lstm(x, h0, h0, hyper(style))[0]
    y_b = lstm(x, h0, h0, hyper(style.flip(0)))[0]
    y_swapped = lstm(x.flip(0), h0, h0, hyper(style.flip(0)))[0]
    assert (y_a - plain).abs().max() > 1e-3
    assert (y_a - y_swapped.flip(0)).abs().max() < 1e-6  # same input and style, same output
    assert (y_a - y_b).abs().max() > 1e-3  # same input, other style: other output


@pytest.mark.parametrize("frontend", ["phoneme", "mel"])
def test_frame_encoder_and_windows(frontend):
    cfg = ContentConfig(frontend, phoneme_dim=8, mel_channels=8, window=2)
    enc = FrameEncoder(cfg, 12)
    x = torch.randint(0, 41, (2, 7)) if frontend == "phoneme" else torch.randn(2, 7, 16, 80)
    padded = pad_sequence_ends(x, cfg)
    assert padded.shape[:2] == (2, 11)
    frames = enc(padded)
    assert frames.shape == (2, 11, 12)
    windows = sliding_windows(frames, 5)
    assert windows.shape == (2, 7, 5, 12)
    assert torch.equal(windows[:, 3, 2], frames[:, 5])  # the centre of window t is frame t
