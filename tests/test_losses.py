"""Losses and discriminators."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.models.config import ContentConfig, DiscriminatorConfig  # noqa: E402
from stylecast.models.losses import (  # noqa: E402
    LipSyncDiscriminator,
    RigMouthLoss,
    RigMouthTerms,
    StyleDiscriminator,
    SyncScale,
    TemporalDiscriminator,
    hinge_d_loss,
    hinge_g_loss,
    reconstruction_loss,
    ssim_1d,
    sync_contrastive_loss,
    sync_d_loss,
    sync_g_loss,
    triplet_loss,
    vertex_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = DiscriminatorConfig(channels=16, point_channels=8, sync_dim=12, n_styles=5)


def test_ssim_is_one_for_identical_sequences_and_lower_otherwise():
    torch.manual_seed(0)
    x = torch.rand(2, 30, 4)
    assert torch.allclose(ssim_1d(x, x), torch.tensor(1.0), atol=1e-5)
    assert ssim_1d(x, x + 0.2 * torch.randn_like(x)) < 0.9
    assert ssim_1d(x, x.flip(1)) < ssim_1d(x, x + 0.01)
    short = torch.rand(1, 5, 3)  # shorter than the window
    assert torch.isfinite(ssim_1d(short, short.flip(1)))


def test_reconstruction_loss_mixes_l1_and_ssim():
    torch.manual_seed(0)
    x = torch.rand(2, 20, 3)
    y = x + 0.1
    assert reconstruction_loss(x, x, 0.1, 11) < 1e-6
    l1_only = reconstruction_loss(x, y, 1.0, 11)
    assert torch.allclose(l1_only, torch.tensor(0.1), atol=1e-6)
    # A constant offset keeps the structure: SSIM barely penalises it.
    assert reconstruction_loss(x, y, 0.0, 11) < reconstruction_loss(x, x.flip(1), 0.0, 11)


def test_vertex_loss_is_mean_distance():
    a = torch.zeros(1, 2, 3, 3)
    b = a.clone()
    b[..., 0] = 3.0
    b[..., 1] = 4.0
    assert torch.allclose(vertex_loss(a, b), torch.tensor(5.0))


def test_triplet_loss_is_zero_once_the_margin_is_met():
    a = torch.zeros(2, 4)
    p = torch.full((2, 4), 0.5)  # distance 1
    far = torch.full((2, 4), 5.0)  # distance 10
    near = torch.full((2, 4), 1.0)  # distance 2
    assert triplet_loss(a, p, far, margin=5.0) == 0
    assert torch.allclose(triplet_loss(a, p, near, margin=5.0), torch.tensor(4.0))


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert torch.allclose(hinge_d_loss(real, fake), torch.tensor(0.25 + 0.5))
    assert torch.allclose(hinge_g_loss(fake), torch.tensor(1.0))


@pytest.mark.parametrize("frontend", ["phoneme", "mel"])
def test_lip_sync_discriminator_on_blendshapes(frontend):
    torch.manual_seed(0)
    content = ContentConfig(frontend, phoneme_dim=8, mel_channels=8)
    disc = LipSyncDiscriminator(SMALL, content, n_mouth=27)
    mouth = torch.rand(3, 5, 27)
    audio = torch.randint(0, 41, (3, 5)) if frontend == "phoneme" else torch.randn(3, 5, 16, 80)
    cos = disc(mouth, audio)
    assert cos.shape == (3,) and (cos.abs() <= 1 + 1e-6).all()
    loss = sync_d_loss(cos, torch.tensor([1.0, 0.0, 1.0])) + sync_g_loss(cos)
    loss.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_lip_sync_discriminator_on_rig_vertices_is_order_free():
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(mouth_input="vertices", channels=16, point_channels=8, sync_dim=12)
    disc = LipSyncDiscriminator(cfg, ContentConfig("phoneme", phoneme_dim=8), n_mouth=27)
    vertices = torch.randn(2, 5, 40, 3)
    audio = torch.randint(0, 41, (2, 5))
    cos = disc(vertices, audio)
    shuffled = vertices[:, :, torch.randperm(40)]
    assert torch.allclose(disc(shuffled, audio), cos, atol=1e-6)  # PointNet: a set of points
    assert torch.isfinite(disc(torch.randn(2, 5, 64, 3), audio)).all()  # any vertex count


def test_style_and_temporal_discriminators_shapes():
    torch.manual_seed(0)
    motion = torch.rand(4, 32, 52, requires_grad=True)
    logits = StyleDiscriminator(SMALL, 52)(motion)
    assert logits.shape == (4, SMALL.n_styles)
    patches = TemporalDiscriminator(SMALL, 52)(motion)
    assert patches.shape == (4, 32 // 2**SMALL.temporal_layers)
    hinge_g_loss(patches).backward()
    assert motion.grad.abs().sum() > 0


def test_sync_losses_have_gradient_for_negative_cosines():
    cosine = torch.tensor([-0.8, -0.1, 0.3], requires_grad=True)
    (sync_d_loss(cosine, torch.ones(3)) + sync_g_loss(cosine)).backward()
    assert (cosine.grad < 0).all()  # pushes every in-sync pair towards cosine 1


# ---------------------------------------------------------------- rig mouth loss


@pytest.fixture(scope="module")
def rig_mouth():
    from stylecast.engine.face import ARKIT_NAMES

    return RigMouthLoss(ARKIT_NAMES), ARKIT_NAMES


def _with(names, **weights) -> torch.Tensor:
    """(1, 1, 52) expression with the named weights set."""
    e = torch.zeros(1, 1, len(names))
    for name, value in weights.items():
        e[..., names.index(name)] = value
    return e


def test_rig_mouth_loss_is_zero_for_equal_inputs_and_grows_with_the_jaw(rig_mouth):
    loss, names = rig_mouth
    torch.manual_seed(0)
    e = 0.3 * torch.rand(2, 10, 52)
    same = loss(e, e)
    assert same.vertex == 0 and same.gap == 0
    jaw = names.index("jawOpen")
    previous = RigMouthTerms(torch.tensor(0.0), torch.tensor(0.0))
    for offset in (0.02, 0.05, 0.1):
        shifted = e.clone()
        shifted[..., jaw] += offset
        terms = loss(shifted, e)
        assert terms.vertex > previous.vertex and terms.gap > previous.gap
        previous = terms
    # jawOpen 0.1 opens the mouth by millimetres, not by hundredths of a coefficient.
    assert 0.5 < previous.gap < 50 and 0.5 < previous.vertex < 20


def test_rig_mouth_gap_is_the_evals_lip_opening(rig_mouth):
    from stylecast.engine.avatar import load_avatar
    from stylecast.training import metrics

    loss, _ = rig_mouth
    rig = load_avatar("default").rig
    e = 0.4 * torch.rand(1, 16, 52, generator=torch.Generator().manual_seed(1))
    expected = metrics.lip_opening(e[0].numpy(), rig) * metrics.MM_PER_UNIT
    assert np.allclose(loss.lip_gap(e)[0].numpy(), expected, rtol=1e-4)


def test_rig_mouth_gradient_reaches_the_weights(rig_mouth):
    loss, _ = rig_mouth
    torch.manual_seed(0)
    layer = nn.Linear(4, 52)
    x = torch.randn(2, 6, 4)
    true = 0.2 * torch.rand(2, 6, 52)
    terms = loss(torch.sigmoid(layer(x)), true)
    (terms.vertex + terms.gap).backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


def test_rig_mouth_closed_frames_weigh_more(rig_mouth):
    loss, names = rig_mouth
    closed = _with(names)  # the rest mouth: lips together
    open_ = _with(names, jawOpen=0.2)  # lips apart
    assert loss.closure_weights(closed).item() == 1 + loss.closed_boost
    assert loss.closure_weights(open_).item() == 1
    # The same jaw error costs more when the truth is a closure than when it is open.
    err = _with(names, jawOpen=0.05)
    on_closed = loss(closed + err, closed).gap
    on_open = loss(open_ + err, open_).gap
    assert on_closed > 3 * on_open
    unboosted = RigMouthLoss(names, closed_boost=0.0)
    assert torch.allclose(unboosted(closed + err, closed).gap * (1 + loss.closed_boost), on_closed)


def test_rig_mouth_loss_rejects_non_arkit_dimensions():
    with pytest.raises(InputError, match="ARKit"):
        RigMouthLoss([f"c{i}" for i in range(64)])
    with pytest.raises(InputError, match="closed_boost"):
        RigMouthLoss(["jawOpen", "mouthClose"], closed_boost=-1)


def test_rig_mouth_loss_follows_the_models_name_order():
    from stylecast.engine.face import ARKIT_NAMES

    names = ("mouthClose", "jawOpen")  # a 2-d model, reversed relative to ARKit's order
    loss = RigMouthLoss(names)
    e = torch.tensor([[[0.0, 0.1]]])  # jawOpen 0.1
    full = RigMouthLoss(ARKIT_NAMES)
    assert torch.allclose(loss.lip_gap(e), full.lip_gap(_with(ARKIT_NAMES, jawOpen=0.1)))


# ---------------------------------------------------------------- contrastive sync loss


def _windows(b: int, s: int, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(
        torch.randn(b, s, d, generator=torch.Generator().manual_seed(seed)), dim=-1
    )


def test_contrastive_sync_loss_is_low_when_each_mouth_matches_its_own_audio():
    audio = _windows(2, 6)
    loss, accuracy = sync_contrastive_loss(audio, audio, torch.tensor(30.0), min_shift=2)
    shuffled = audio.flatten(0, 1)[torch.randperm(12)].reshape(2, 6, -1)
    worse, chance = sync_contrastive_loss(shuffled, audio, torch.tensor(30.0), min_shift=2)
    assert accuracy == 1.0 and loss < 0.1
    assert worse > loss + 1.0 and chance < 0.5


def test_contrastive_sync_loss_ignores_same_row_neighbours_closer_than_min_shift():
    audio = _windows(1, 4)
    mouth = audio.clone()
    mouth[0, 1] = audio[0, 2]  # mouth 1 looks like audio 2, one frame away
    scale = torch.tensor(30.0)
    strict, _ = sync_contrastive_loss(mouth, audio, scale, min_shift=1)
    lenient, accuracy = sync_contrastive_loss(mouth, audio, scale, min_shift=2)
    assert lenient < strict  # the confusable neighbour is no negative at min_shift 2
    assert accuracy == 1.0


def test_contrastive_sync_loss_penalises_a_still_mouth_that_matches_the_audio():
    audio = _windows(2, 3)
    mouth = _windows(2, 3, seed=1) * 0.2 + audio
    scale = torch.tensor(20.0)
    base, _ = sync_contrastive_loss(mouth, audio, scale, 2, still=torch.zeros_like(audio))
    fooled, _ = sync_contrastive_loss(mouth, audio, scale, 2, still=audio)
    assert fooled > base + 0.3  # zero rows: no still negative
    sync_contrastive_loss(mouth.requires_grad_(), audio, scale, 2, still=audio)[0].backward()
    assert mouth.grad.abs().sum() > 0


def test_sync_scale_is_learned_and_clamped():
    scale = SyncScale(10.0, max_scale=50.0)
    assert scale().item() == pytest.approx(10.0)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="initial scale"):
        SyncScale(0.0)


def test_audio_embedding_from_shared_frame_features_is_the_same():
    torch.manual_seed(0)
    disc = LipSyncDiscriminator(SMALL, ContentConfig("mel", mel_channels=8), n_mouth=27)
    audio = torch.randn(3, 5, 16, 80)
    shared = disc.embed_audio_frames(disc.audio_frame(audio))
    assert torch.allclose(disc.embed_audio(audio), shared)
