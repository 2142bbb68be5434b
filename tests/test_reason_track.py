"""PhysEncoder object tracking: the targets are where the renderer drew each object (checked
against the instance segmentation, an independent output of the same scene), they line up with
the frames the encoder is fed, and the tracking loss trains and round-trips."""

import json

import numpy as np
import pytest

from physforge.reason.config import EncoderConfig, TrainConfig
from physforge.reason.data import N_NEXT, SLOTS, load_split, project_uv, scene_targets
from physforge.reason.errors import ReasonConfigError
from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture)

torch = pytest.importorskip("torch")


def _scene_rows(folder, split):
    import pyarrow.parquet as pq

    rows = []
    for path in sorted((folder / "scenes" / split).glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def test_frame_positions_are_where_the_segmentation_draws_each_object(tiny_dataset):
    from physforge.images import load_image

    from physforge.reason.data import dataset_splits

    errors = []
    for split in dataset_splits(tiny_dataset):
        for row in _scene_rows(tiny_dataset, split):
            targets = scene_targets(row)
            uv, visible = targets["frame_uv"], targets["frame_visible"]
            assert uv.shape == (len(row["frames"]) + N_NEXT, len(SLOTS), 2)
            assert not visible[:, ~targets["present"]].any()
            w, h = row["width"], row["height"]
            for k, image in enumerate(row["segmentation"]):
                ids = load_image(image["bytes"], min_side=1, name="segmentation")
                ids = ids[..., 0] if ids.ndim == 3 else ids
                for obj in row["objects"]:
                    if obj["shape"] == "pendulum" or obj["color"] not in SLOTS:  # pendulum: body = bob, drawn with rod
                        continue
                    ys, xs = np.nonzero(ids == obj["instance_id"])
                    if len(xs) < 6:  # hidden or cut off: its centroid is not its centre
                        continue
                    centroid = np.array([(2 * xs + 1).mean() / w - 1, (2 * ys + 1).mean() / h - 1])
                    assert visible[k, SLOTS.index(obj["color"])]
                    errors.append(np.abs(uv[k, SLOTS.index(obj["color"])] - centroid).max() * w / 2)  # px
    errors = np.array(errors)
    assert len(errors) > 100
    # A sphere's or cube's silhouette centroid sits within about a pixel of its projected centre;
    # occlusion moves a few. A wrong axis, sign or frame time would put most off by many px.
    assert np.median(errors) < 1.0 and np.percentile(errors, 90) < 2.5, np.percentile(errors, [50, 90, 99])


def test_project_uv_closed_form_pinhole():
    # Camera 2 m in front of the origin (at -y), looking at it along +y with z up; 90 deg fovy at 64 px.
    rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # columns: camera right, up, back (= -view) in world
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, (0.0, -2.0, 0.0)
    camera = {"intrinsics": [32.0, 0, 32.0, 0, 32.0, 32.0, 0, 0, 1], "world_from_camera": pose.ravel().tolist()}
    points = np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0.5, 2.0, -0.5]])
    # x right -> u = x / distance; z up -> v = -z / distance (rows grow downwards).
    np.testing.assert_allclose(project_uv(camera, 64, 64, points), [[0, 0], [0.5, 0], [0, -0.5], [0.125, 0.125]],
                               atol=1e-12)


def test_track_targets_follow_the_frames_the_encoder_is_fed(tiny_dataset):
    from physforge.reason import build_encoder
    from physforge.reason.recipe_encoder import track_targets

    split = load_split(tiny_dataset, ["train"], image_size=64)
    model = build_encoder(EncoderConfig(clip_frames=3, track=True), torch.Generator().manual_seed(0))
    checked = 0
    for q in split.questions:
        scene = split.scenes[q["scene_id"]]
        found = track_targets(split, q, 3)
        if max(q["frame_indices"]) >= len(scene.frames):
            assert found is None  # the impossible twin's frames have no true states
            continue
        shown, after = found["shown"], found["next"]
        assert found["shown_visible"].shape == shown.shape[:2] and found["next_visible"].shape == after.shape[:2]
        clip = (model.clip_tensor([split.images(q)])[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for j in range(3):
            # Which stored frame is clip input j? Its target must be that frame's positions.
            k = [i for i in range(len(scene.frames)) if np.array_equal(scene.frames[i], clip[j])]
            assert k and any(np.array_equal(shown[j], scene.targets["frame_uv"][i]) for i in k)
        last = max(q["frame_indices"])
        np.testing.assert_array_equal(after, scene.targets["frame_uv"][last + 1: last + 1 + N_NEXT])
        checked += 1
    assert checked > 10


def test_track_loss_trains_round_trips_and_is_opt_in(tiny_dataset, tmp_path):
    from physforge.reason import build_encoder, load_encoder, train_encoder
    from physforge.reason.recipe_encoder import track_loss

    with pytest.raises(ReasonConfigError, match="track_weight"):
        TrainConfig(data="d", out="o", track_weight=-1.0)
    with pytest.raises(ReasonConfigError, match="blind model sees no frames"):
        TrainConfig(data="d", out="o", track_weight=1.0, model=EncoderConfig(blind=True))
    plain = build_encoder(EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16),
                          torch.Generator().manual_seed(0))
    assert not any(k.startswith(("track_head", "next_head")) for k in plain.state_dict())  # old checkpoints load
    with pytest.raises(ValueError, match="track=True"):
        plain.track(torch.zeros(1, 16), torch.zeros(1, 2, 16))

    model_args = EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16)
    config = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), steps=30, batch_size=8, lr=0.01,
                         val_split="", aux_weight=0.0, track_weight=1.0, model=model_args)
    train_encoder(config)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "track_shown" in lines[-1] and "track_next" in lines[-1]
    model = load_encoder(tmp_path / "run" / "checkpoint")
    assert model.config.track
    # Trained, the heads beat the same network at initialisation on the training scenes.
    split = load_split(tiny_dataset, ["train"], image_size=16)
    questions = split.questions[:64]

    def loss_of(m):
        with torch.no_grad():
            z, frames = m.encode_parts(m.batch(split, questions)["clips"])
            return float(track_loss(m, z, frames, split, questions)[0])

    assert loss_of(model) < 0.7 * loss_of(load_encoder(tmp_path / "run" / "init"))


def test_slot_features_carry_the_tracked_positions_and_slot_question_reads_the_named_objects():
    """With track the slot features end with the slot's predicted positions (shown frames, then
    the next ones); with slot_question the fused layer reads the features of the objects the
    question names, so the answer changes when (only) those objects' features change."""
    from physforge.reason.encoder import PhysEncoder, named_slots, slot_width

    red, blue, green = SLOTS.index("red"), SLOTS.index("blue"), SLOTS.index("green")
    assert named_slots("If the blue cube were removed, would the red ball and the blue cube touch?") == [blue, red]
    assert named_slots("Would the tower fall?") == [-1, -1]
    config = EncoderConfig(image_size=16, channels=(4,), dim=8, clip_frames=3, track=True, slot_options=True,
                           slot_question=True)
    torch.manual_seed(0)
    model = PhysEncoder(config).eval()
    clip = torch.rand(2, 3, 3, 16, 16)
    tokens, options = torch.ones(2, 3, dtype=torch.long), torch.ones(2, 2, 2, dtype=torch.long)
    with torch.no_grad():
        z, frames = model.encode_parts(clip)
        tracked = model.track(z, frames)
        features = model.slot_features(z, torch.tensor([[blue, -1], [red, blue]]), frames)
        assert features.shape == (2, 2, slot_width(config))
        width = 2 * (config.clip_frames + N_NEXT)
        expected = torch.cat([tracked["shown"][1, :, blue], tracked["next"][1, :, blue]]).reshape(-1)
        torch.testing.assert_close(features[1, 1, -width:], expected)
        assert not features[0, 1].any()
        with pytest.raises(ValueError, match="question_slots"):
            model.qa(z, tokens, options, torch.tensor([[red, blue]] * 2), None, frames)
        slots = torch.tensor([[red, blue]] * 2)

        def answer(question_slots):
            return model.qa(z, tokens, options, slots, torch.tensor(question_slots), frames)["bool"]

        # Same z, same text: only which objects the question names differs.
        assert not torch.allclose(answer([[red, -1]] * 2), answer([[green, -1]] * 2))
    # batch() hands the named slots over (a blind model's batch reads no images).
    from physforge.reason.data import Split

    blind = PhysEncoder(EncoderConfig(image_size=16, channels=(4,), dim=8, blind=True, slot_question=True))
    q = {"question": "Would the green cube hit the red ball?", "options": [], "frame_indices": [0]}
    assert blind.batch(Split(questions=[q]), [q])["question_slots"].tolist() == [[green, red]]
