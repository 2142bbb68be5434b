"""PhysEncoder: auxiliary targets against closed-form motion, the training recipe (smoke run,
same seed -> same weights, CLI), checkpoint round trip, and error messages."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from physforge.reason.config import EncoderConfig, TrainConfig
from physforge.reason.data import PAIRS, SLOTS, load_split, scene_targets
from physforge.reason.errors import CheckpointError, ReasonConfigError, ReasonDataError
from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture)

torch = pytest.importorskip("torch")


def test_scene_targets_match_closed_form_motion():
    """Red slides at 1 m/s along x, blue rests; they touch once: displacements are v * dt, the
    centred log masses are +-log 2, only red is displaced, only the red-blue pair touched."""
    times = np.arange(0, 2.0001, 0.05)
    red = np.stack([times * 1.0, np.zeros_like(times), np.full_like(times, 0.1)], 1)
    blue = np.tile([2.0, 0.0, 0.1], (len(times), 1))
    row = {"clip_duration": 1.0, "duration": 2.0,
           "objects": [{"name": "a", "color": "red", "mass": 2.0, "friction": 0.4, "restitution": 0.9},
                       {"name": "b", "color": "blue", "mass": 0.5, "friction": 0.7, "restitution": 0.1}],
           "states": {"time": times.tolist(), "body_names": ["a", "b"],
                      "position": np.stack([red, blue], 1).tolist()},
           "events": [{"type": "contact_start", "bodies": ["a", "b"]}, {"type": "contact_start", "bodies": ["a", "ground"]}]}
    t = scene_targets(row)
    r, b = SLOTS.index("red"), SLOTS.index("blue")
    assert t["present"].tolist() == [s in ("red", "blue") for s in SLOTS]
    np.testing.assert_allclose(t["future"][:, r], [[0.5, 0, 0], [1.0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(t["future"][:, b], 0.0, atol=1e-6)
    np.testing.assert_allclose(t["properties"][r], [math.log(2), 0.4, 0.9], atol=1e-6)
    np.testing.assert_allclose(t["properties"][b], [-math.log(2), 0.7, 0.1], atol=1e-6)
    assert t["displaced"][r] == 1 and t["displaced"][b] == 0
    assert t["contacts"].sum() == 1 and t["contacts"][PAIRS.index((r, b))] == 1


def test_configs_name_the_bad_field():
    with pytest.raises(ReasonConfigError, match="image_size: must be a multiple of 16"):
        EncoderConfig(image_size=50)
    with pytest.raises(ReasonConfigError, match="channels"):
        EncoderConfig(image_size=16, channels=(8, 8, 8, 8, 8))
    with pytest.raises(ReasonConfigError, match=r"steps: expected an integer in \[0, "):
        TrainConfig(data="d", out="o", steps=-1)
    with pytest.raises(ReasonConfigError, match="model.colour: unknown field"):
        TrainConfig.from_dict({"data": "d", "out": "o", "model": {"colour": 1}})


def test_missing_split_is_named(tiny_dataset):
    with pytest.raises(ReasonDataError, match="split 'nope' is not in this dataset"):
        load_split(tiny_dataset, ["nope"])


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_train_recipe_smoke_and_same_seed_same_weights(tiny_dataset, tmp_path):
    from physforge.reason import train_encoder

    def run(name, seed):
        config = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / name), seed=seed, steps=3, batch_size=8,
                             max_val_questions=8)
        return train_encoder(config)

    first, again, other = run("a", 0), run("b", 0), run("c", 1)
    assert first["final_loss"] == again["final_loss"] and other["final_loss"] != first["final_loss"]
    assert first["steps"] == 3 and math.isfinite(first["final_loss"]) and first["train_images_per_second"] > 0
    assert 0.0 <= first["val"]["accuracy"] <= 1.0 and first["val"]["questions"] == 8
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["seed"] == 0 and len(saved["model"]["vocab"]) > 20  # vocab built from the questions
    meta = json.loads((tmp_path / "a" / "checkpoint" / "checkpoint.json").read_text())
    assert meta["step"] == 3 and meta["model"] == saved["model"] and meta["train_config"]["steps"] == 3
    a, b, c = (_weights(tmp_path / n / "checkpoint") for n in "abc")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[k], c[k]) for k in a)
    start = _weights(tmp_path / "a" / "init")
    assert any(not torch.equal(a[k], start[k]) for k in a)  # training moved the weights
    with pytest.raises(FileExistsError, match="already exists"):
        run("a", 0)


def test_cli_train_writes_a_run_folder(tiny_dataset, tmp_path):
    import json

    from physforge.cli.main import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["reason", "train", "--data", str(tiny_dataset), "--out", str(out), "--steps", "2",
                                      "--batch-size", "4", "--clip-frames", "2"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"config.json", "init", "checkpoint", "metrics.jsonl", "summary.json"}
    tracked = CliRunner().invoke(app, ["reason", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "t"),
                                       "--steps", "1", "--batch-size", "4", "--clip-frames", "2", "--track-weight", "0.5"])
    assert tracked.exit_code == 0, tracked.output
    assert json.loads((tmp_path / "t" / "config.json").read_text())["track_weight"] == 0.5
    blind_tracked = CliRunner().invoke(app, ["reason", "train", "--data", str(tiny_dataset), "--out",
                                             str(tmp_path / "bt"), "--steps", "1", "--blind", "--track-weight", "1"])
    assert blind_tracked.exit_code == 2 and "track_weight" in blind_tracked.output
    bad = CliRunner().invoke(app, ["reason", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x"),
                                   "--steps", "1"])
    assert bad.exit_code == 2 and "meta/info.json is missing" in bad.output


def test_cli_train_config_file_needs_no_folders_and_the_options_override_them(tiny_dataset, tmp_path):
    import json

    from physforge.cli.main import app

    settings = {"steps": 1, "batch_size": 4, "model": {"clip_frames": 2}}
    # the file names no folders: --data and --out give them
    (tmp_path / "partial.json").write_text(json.dumps(settings))
    result = CliRunner().invoke(app, ["reason", "train", "--config", str(tmp_path / "partial.json"),
                                      "--data", str(tiny_dataset), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["steps"] == 1
    # the file names both: no option needed; --out replaces the file's
    (tmp_path / "full.json").write_text(json.dumps({**settings, "data": str(tiny_dataset), "out": str(tmp_path / "b")}))
    assert CliRunner().invoke(app, ["reason", "train", "--config", str(tmp_path / "full.json")]).exit_code == 0
    assert (tmp_path / "b" / "summary.json").exists()
    result = CliRunner().invoke(app, ["reason", "train", "--config", str(tmp_path / "full.json"),
                                      "--out", str(tmp_path / "c")])
    assert result.exit_code == 0 and (tmp_path / "c" / "summary.json").exists(), result.output
    # without a config both folders are required, and the error names the missing one
    missing = CliRunner().invoke(app, ["reason", "train", "--data", str(tiny_dataset)])
    assert missing.exit_code == 2 and "--out" in missing.output and "required without --config" in missing.output


def test_checkpoint_round_trip_gives_identical_outputs(tiny_dataset, tmp_path):
    from physforge.reason import build_encoder, load_encoder, save_encoder
    from physforge.reason.recipe_encoder import build_vocab

    split = load_split(tiny_dataset, ["train", "val"], image_size=64)
    vocab, names = build_vocab(split)
    model = build_encoder(EncoderConfig(vocab=vocab, names=names), torch.Generator().manual_seed(3)).eval()
    with torch.no_grad():  # perturb every weight so that no default initialisation could pass by chance
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    save_encoder(model, tmp_path / "ckpt", step=7)
    loaded = load_encoder(tmp_path / "ckpt")
    assert loaded.step == 7 and loaded.config == model.config
    inputs = model.batch(split, split.questions)
    with torch.no_grad():
        z1, out1 = model(**inputs)
        z2, out2 = loaded(**inputs)
        h1, h2 = model.heads(z1), loaded.heads(z2)
    assert z1.shape == (len(split.questions), model.config.dim)
    assert torch.equal(z1, z2)
    for key in out1:
        assert torch.equal(out1[key], out2[key]), key
    for key in h1:
        assert torch.equal(h1[key], h2[key]), key
    assert model.answer(split, split.questions) == loaded.answer(split, split.questions)


def test_load_encoder_refuses_bad_checkpoints(tiny_dataset, tmp_path):
    from physforge.reason import build_encoder, load_encoder, save_encoder

    with pytest.raises(CheckpointError, match="no checkpoint.json here"):
        load_encoder(tmp_path)
    save_encoder(build_encoder(EncoderConfig(), torch.Generator().manual_seed(0)), tmp_path / "c", step=0)
    meta_path = tmp_path / "c" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "model": {**meta["model"], "dim": 64}}))
    with pytest.raises(CheckpointError, match="weights do not match the model arguments"):
        load_encoder(tmp_path / "c")
    meta_path.write_text(json.dumps({**meta, "kind": "something.else"}))
    with pytest.raises(CheckpointError, match="kind is 'something.else'"):
        load_encoder(tmp_path / "c")
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "c" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_encoder(tmp_path / "c")


def test_blind_encoder_ignores_the_images_and_the_seeing_one_does_not(tiny_dataset):
    from physforge.reason import build_encoder
    from physforge.reason.recipe_encoder import build_vocab

    split = load_split(tiny_dataset, ["train"], image_size=64)
    vocab, names = build_vocab(split)
    questions = split.questions[:6]
    for blind in (True, False):
        model = build_encoder(EncoderConfig(vocab=vocab, names=names, blind=blind), torch.Generator().manual_seed(0))
        inputs = model.batch(split, questions)
        noisy = dict(inputs, clips=torch.rand(inputs["clips"].shape, generator=torch.Generator().manual_seed(1)))
        with torch.no_grad():
            same = torch.equal(model(**inputs)[0], model(**noisy)[0])
        assert same == blind


def test_reason_and_its_cli_import_without_torch_or_transformers():
    import subprocess
    import sys

    code = ("import sys, physforge.cli.main, physforge.reason, physforge.reason.harness, physforge.reason.models; "
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'matplotlib') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_answer_weights_balance_each_templates_answers():
    """3 'yes' and 1 'no' of one template, 2 'A' of another, one number: weighted, each answer of a
    template carries the same total; numbers weigh 1 before scaling; the mean weight is 1."""
    from physforge.reason.recipe_encoder import answer_weights

    questions = ([{"template": "t", "answer": "yes", "answer_type": "bool"}] * 3
                 + [{"template": "t", "answer": "no", "answer_type": "bool"}]
                 + [{"template": "c", "answer": "A", "answer_type": "choice"}] * 2
                 + [{"template": "n", "answer": "0.5", "answer_type": "number"}])
    w = answer_weights(questions)
    assert 3 * w[("t", "yes")] == pytest.approx(w[("t", "no")])
    assert ("n", "0.5") not in w
    total = sum(w.get((q["template"], q["answer"]), 1.0) for q in questions)
    assert total == pytest.approx(len(questions))
    # Unscaled, 'no' would be 4 / (2 * 1) = 2 and a one-answer template 1: the ratio survives scaling.
    assert w[("t", "no")] / w[("c", "A")] == pytest.approx(2.0)


def test_frame_differences_are_the_extra_channels_and_old_checkpoints_load_without_them(tmp_path):
    """With the image channels' first-layer weights zeroed, a frame-difference encoder sees only
    differences: a clip and the same clip brightened by a constant give the same z, while a
    different motion does not. With the difference channels' weights zeroed instead, it equals a
    frames-only encoder with the same other weights. A checkpoint whose config predates
    frame_diff loads as a frames-only model."""
    from physforge.reason.encoder import PhysEncoder, load_encoder, save_encoder

    torch.manual_seed(0)
    small = dict(image_size=16, channels=(4,), dim=8, clip_frames=4)
    clip = torch.rand(1, 4, 3, 16, 16) * 0.5
    diff_model = PhysEncoder(EncoderConfig(**small, frame_diff=True)).eval()
    plain = PhysEncoder(EncoderConfig(**small, frame_diff=False)).eval()
    with torch.no_grad():
        weights = {k: v.clone() for k, v in diff_model.state_dict().items()}
        diff_model.frame_cnn[0].weight[:, :3] = 0
        torch.testing.assert_close(diff_model.encode(clip), diff_model.encode(clip + 0.2))
        assert not torch.allclose(diff_model.encode(clip), diff_model.encode(clip.flip(1)), atol=1e-5)
        diff_model.load_state_dict(weights)
        diff_model.frame_cnn[0].weight[:, 3:] = 0
        plain_weights = {k: v for k, v in weights.items()}
        plain_weights["frame_cnn.0.weight"] = weights["frame_cnn.0.weight"][:, :3]
        plain.load_state_dict(plain_weights)
        torch.testing.assert_close(diff_model.encode(clip), plain.encode(clip))
    save_encoder(plain, tmp_path / "ck", step=1)
    meta = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    del meta["model"]["frame_diff"]
    (tmp_path / "ck" / "checkpoint.json").write_text(json.dumps(meta))
    loaded = load_encoder(tmp_path / "ck")
    assert loaded.config.frame_diff is False
    torch.testing.assert_close(loaded.encode(clip), plain.encode(clip))


def test_slot_options_bind_each_option_to_the_object_its_colour_names():
    """With slot_options an option sees the heads' predictions for the slot of the colour it
    names: the features equal heads() at that slot (zeros for an option naming no single
    object), and swapping what the heads predict for red and blue swaps the scores of two
    options that differ only in which of those objects they name."""
    from physforge.reason.data import N_FUTURE
    from physforge.reason.encoder import PhysEncoder, option_slot

    red, blue = SLOTS.index("red"), SLOTS.index("blue")
    assert option_slot("red cube") == red and option_slot("blue sphere") == blue
    assert option_slot("the red cube collides with the blue sphere") == -1 and option_slot("the first clip") == -1
    torch.manual_seed(0)
    model = PhysEncoder(EncoderConfig(image_size=16, channels=(4,), dim=8, clip_frames=2, slot_options=True)).eval()
    clip, tokens = torch.rand(1, 2, 3, 16, 16), torch.ones(1, 3, dtype=torch.long)
    options = torch.ones(1, 2, 2, dtype=torch.long)  # the same option text twice: only the slots differ
    slots = torch.tensor([[red, blue]])
    with torch.no_grad():
        z = model.encode(clip)
        heads = model.heads(z)
        features = model.slot_features(z, torch.tensor([[red, blue, -1]]))
        assert torch.equal(features[0, 0, :3], heads["properties"][0, red])
        assert torch.equal(features[0, 1, 3], heads["displaced"][0, blue])
        assert torch.equal(features[0, 1, 4:], heads["future"][0, :, blue].reshape(-1))
        assert not features[0, 2].any()
        before = model.qa(z, tokens, options, slots)["options"][0]
        for head, width, groups in ((model.property_head, 3, 1), (model.stability_head, 1, 1),
                                    (model.state_head, 3, N_FUTURE)):
            rows = torch.arange(head.out_features)
            for g in range(groups):
                base = g * len(SLOTS) * width
                for k in range(width):
                    rows[base + red * width + k], rows[base + blue * width + k] = (base + blue * width + k,
                                                                                    base + red * width + k)
            head.weight.copy_(head.weight[rows])
            head.bias.copy_(head.bias[rows])
        after = model.qa(z, tokens, options, slots)["options"][0]
    assert not torch.allclose(before[0], before[1])
    torch.testing.assert_close(after, before.flip(0))
    with pytest.raises(ValueError, match="option_slots"):
        model.qa(z, tokens, options)


def test_dropout_only_acts_while_training_and_is_validated():
    from physforge.reason.encoder import PhysEncoder

    with pytest.raises(ReasonConfigError, match=r"dropout: expected a number in \[0.0, 0.9\]"):
        EncoderConfig(dropout=0.95)
    torch.manual_seed(0)
    model = PhysEncoder(EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16, text_dim=8, hidden=16,
                                      dropout=0.5))
    clips = torch.rand(3, 2, 3, 16, 16)
    tokens = torch.ones(3, 5, dtype=torch.long)
    options = torch.zeros(3, 0, 1, dtype=torch.long)
    model.train()
    first, second = model(clips, tokens, options)[1]["bool"], model(clips, tokens, options)[1]["bool"]
    assert not torch.equal(first, second)  # units are dropped at random while training
    model.eval()
    assert torch.equal(model(clips, tokens, options)[1]["bool"], model(clips, tokens, options)[1]["bool"])
    # Without dropout the same weights in training mode give the evaluation answers.
    plain = PhysEncoder(EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16, text_dim=8, hidden=16))
    plain.load_state_dict(model.state_dict())
    plain.train()
    assert torch.allclose(plain(clips, tokens, options)[1]["bool"], model(clips, tokens, options)[1]["bool"])


def test_clip_jitter_keeps_hue_and_scales_frame_differences_by_one_factor_per_clip():
    from physforge.reason.recipe_encoder import jitter_clips

    generator = torch.Generator().manual_seed(3)
    clips = 0.4 + 0.2 * torch.rand(4, 3, 3, 8, 8, generator=generator)  # far from 0 and 1: nothing clips
    out = jitter_clips(clips, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, clips)
    # x -> a (x - m) + m + b per clip: differences between frames and between channels of a pixel
    # (the colour an object is named by) all scale by the clip's one contrast factor a > 0.
    for k in range(4):
        dt = (clips[k, 1:] - clips[k, :-1]).flatten()
        ratio = (out[k, 1:] - out[k, :-1]).flatten() / dt
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-3) and 0.75 <= float(ratio[0]) <= 1.25
        dc = (out[k, :, 0] - out[k, :, 1]) / (clips[k, :, 0] - clips[k, :, 1])
        assert torch.allclose(dc, ratio[0].expand_as(dc), atol=1e-3)
    again = jitter_clips(clips, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert float(jitter_clips(torch.ones(2, 2, 3, 4, 4), torch.Generator().manual_seed(1)).max()) <= 1.0


def test_keep_best_saves_the_best_validated_step(tiny_dataset, tmp_path):
    from physforge.reason import load_encoder, train_encoder
    from physforge.reason.recipe_encoder import evaluate_accuracy

    with pytest.raises(ReasonConfigError, match="keep_best: needs a val_split and eval_every"):
        TrainConfig(data="d", out="o", keep_best=True)
    config = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), steps=8, batch_size=8, eval_every=2,
                         max_val_questions=16, keep_best=True, augment=True, lr=0.02,
                         model=EncoderConfig(image_size=16, clip_frames=2, channels=(8, 8), dim=16, dropout=0.2))
    summary = train_encoder(config)
    logged = {}
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "val" in record:
            logged[record["step"]] = record["val"]["accuracy"]
    assert sorted(logged) == [2, 4, 6, 8]
    best = summary["best_step"]
    assert logged[best] == max(logged.values()) and min(s for s, a in logged.items() if a == logged[best]) == best
    meta = json.loads((tmp_path / "run" / "checkpoint" / "checkpoint.json").read_text())
    assert meta["step"] == best and not (tmp_path / "run" / "best").exists()
    # The saved weights really are that step's: scored again from disk they give its logged accuracy.
    val = load_split(tiny_dataset, ["val"], image_size=16, max_questions=16,
                     rng=np.random.default_rng(np.random.SeedSequence([0, 1])))
    assert evaluate_accuracy(load_encoder(tmp_path / "run" / "checkpoint"), val, val.questions)["accuracy"] == \
        logged[best] == summary["val"]["accuracy"]
    assert 0.0 <= summary["train_sample"]["accuracy"] <= 1.0 and summary["train_sample"]["questions"] == summary["val"]["questions"]
