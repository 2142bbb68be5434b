"""PhysEncoder keypoint layer (EncoderConfig.keypoints): spatial soft-argmax against closed-form
positions, pooling under a heatmap, and the option trains, round-trips and stays opt-in."""

import json

import numpy as np
import pytest

from physforge.reason.config import EncoderConfig, TrainConfig
from physforge.reason.data import load_split
from physforge.reason.errors import ReasonConfigError
from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture)

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("h,w,row,col", [(8, 8, 0, 0), (8, 8, 3, 6), (5, 7, 4, 2), (1, 4, 0, 3)])
def test_soft_argmax_of_a_single_peak_is_that_pixel_centre(h, w, row, col):
    from physforge.reason.encoder import soft_argmax, spatial_softmax

    logits = torch.full((1, 1, h, w), -1e4)
    logits[0, 0, row, col] = 0.0
    xy = soft_argmax(spatial_softmax(logits))[0, 0].numpy()
    # Pixel centres as the tracking targets place them: (2 i + 1) / W - 1, x from columns, y from rows.
    np.testing.assert_allclose(xy, [(2 * col + 1) / w - 1, (2 * row + 1) / h - 1], atol=1e-6)


def test_soft_argmax_of_two_equal_peaks_is_their_midpoint():
    from physforge.reason.encoder import soft_argmax, spatial_softmax

    logits = torch.full((1, 1, 4, 4), -1e4)
    logits[0, 0, 0, 0] = logits[0, 0, 3, 1] = 2.0
    np.testing.assert_allclose(soft_argmax(spatial_softmax(logits))[0, 0].numpy(), [(-0.75 - 0.25) / 2, 0.0],
                               atol=1e-6)


def test_keypoint_features_pool_the_features_under_each_heatmap():
    from physforge.reason.encoder import PhysEncoder, keypoint_width

    config = EncoderConfig(image_size=16, channels=(3, 3), dim=8, clip_frames=2, track=True, keypoints=2,
                           keypoint_stage=1)
    model = PhysEncoder(config)
    # Map k's logits are 100 x feature channel k, so it peaks where that channel does.
    with torch.no_grad():
        model.heatmap.weight.zero_()
        model.heatmap.bias.zero_()
        model.heatmap.weight[0, 0] = model.heatmap.weight[1, 1] = 100.0
    feature_map = torch.zeros(1, 3, 8, 8)
    feature_map[0, :, 2, 5] = torch.tensor([1.0, 0.0, 0.3])
    feature_map[0, :, 6, 1] = torch.tensor([0.0, 1.0, -0.7])
    with torch.no_grad():
        out = model.keypoint_features(feature_map)
    assert out.shape == (1, keypoint_width(config)) == (1, 2 * (2 + 3))
    first, second = out[0, :5].numpy(), out[0, 5:].numpy()
    np.testing.assert_allclose(first, [(2 * 5 + 1) / 8 - 1, (2 * 2 + 1) / 8 - 1, 1.0, 0.0, 0.3], atol=1e-4)
    np.testing.assert_allclose(second, [(2 * 1 + 1) / 8 - 1, (2 * 6 + 1) / 8 - 1, 0.0, 1.0, -0.7], atol=1e-4)


def test_frame_tracking_reads_the_keypoints_not_the_dense_projection():
    from physforge.reason import build_encoder

    config = EncoderConfig(image_size=16, channels=(4, 4), dim=8, clip_frames=2, track=True, keypoints=3)
    model = build_encoder(config, torch.Generator().manual_seed(0))
    z, frames = model.encode_parts(torch.rand(2, 2, 3, 16, 16))
    assert frames.shape == (2, 2, 8 + 3 * (2 + 4))
    changed = frames.clone()
    changed[..., :8] += 5.0
    torch.testing.assert_close(model.track(z, frames)["shown"], model.track(z, changed)["shown"])
    changed[..., 8] += 1.0  # first keypoint's x
    assert not torch.allclose(model.track(z, frames)["shown"], model.track(z, changed)["shown"])


def test_keypoints_config_errors_name_the_field():
    with pytest.raises(ReasonConfigError, match="keypoint_stage"):
        EncoderConfig(channels=(8, 8), keypoints=4, keypoint_stage=3)
    with pytest.raises(ReasonConfigError, match="keypoints"):
        EncoderConfig(keypoints=-1)
    with pytest.raises(ReasonConfigError, match="model.keypoints.*track_weight"):
        TrainConfig(data="d", out="o", model=EncoderConfig(keypoints=4))
    with pytest.raises(ReasonConfigError, match="keypoint_gain"):
        EncoderConfig(keypoints=4, track=True, keypoint_gain=-1.0)


def test_keypoint_gain_scales_the_initial_heatmaps_only():
    from physforge.reason import build_encoder

    def build(gain):
        return build_encoder(EncoderConfig(image_size=16, channels=(4, 4), dim=8, clip_frames=2, track=True,
                                           keypoints=3, keypoint_gain=gain), torch.Generator().manual_seed(0))

    plain, sharp = build(1.0).state_dict(), build(10.0).state_dict()
    torch.testing.assert_close(sharp["heatmap.weight"], 10.0 * plain["heatmap.weight"])
    torch.testing.assert_close(sharp["frame_proj.weight"], plain["frame_proj.weight"])


def test_keypoints_train_round_trip_and_are_opt_in(tiny_dataset, tmp_path):
    from physforge.reason import build_encoder, load_encoder, train_encoder
    from physforge.reason.recipe_encoder import track_loss

    plain = build_encoder(EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16, track=True),
                          torch.Generator().manual_seed(0))
    assert not any(k.startswith(("heatmap", "keypoint_proj")) for k in plain.state_dict())  # old checkpoints load
    model_args = EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16, keypoints=4, keypoint_stage=1)
    config = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), steps=30, batch_size=8, lr=0.01,
                         val_split="", aux_weight=0.0, track_weight=1.0, model=model_args)
    train_encoder(config)
    saved = json.loads((tmp_path / "run" / "checkpoint" / "checkpoint.json").read_text())["model"]
    assert saved["keypoints"] == 4 and saved["keypoint_stage"] == 1
    model = load_encoder(tmp_path / "run" / "checkpoint")
    assert model.config.track and model.config.keypoints == 4
    split = load_split(tiny_dataset, ["train"], image_size=16)
    questions = split.questions[:64]
    inputs = model.batch(split, questions)
    with torch.no_grad():
        answers = model.answer(split, questions)
    assert len(answers) == len(questions)

    def loss_of(m):
        with torch.no_grad():
            z, frames = m.encode_parts(inputs["clips"])
            return float(track_loss(m, z, frames, split, questions)[0])

    # Trained through the keypoints, the tracking head beats the same network at initialisation.
    assert loss_of(model) < 0.7 * loss_of(load_encoder(tmp_path / "run" / "init"))
