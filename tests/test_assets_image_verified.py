"""Verified generation (#5): seeded, local sampling in ``vlm.generate`` and the generate -> build ->
gate -> resample loop of ``from_image.generate_verified`` used by ``asset from-image`` and ``asset eval``."""

import json
import os

import numpy as np
import pytest

from physforge.assets.image_text import GenerationParseError, parse_global
from physforge.assets.library import generate as library_generate
from physforge.assets.library import object_rng

os.environ["HF_HUB_OFFLINE"] = "1"
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "images")


@pytest.fixture(scope="module")
def builtin():
    pytest.importorskip("transformers")
    import torch

    from physforge.assets.image_model import AssetGenerator
    from physforge.images import load_image

    torch.set_num_threads(1)
    generator = AssetGenerator()
    return generator, load_image(os.path.join(EXAMPLES, "cabinet.png"))


def _round_one(generator, image, **kwargs):
    from PIL import Image

    from physforge.assets.image_text import first_user_turn
    from physforge.vlm import generate

    picture = Image.fromarray(image).convert("RGB")
    messages = [first_user_turn(None)]
    return generate(generator.model, generator.processor, messages, [picture], max_new_tokens=40, **kwargs), \
        messages, picture


def test_greedy_default_is_the_argmax_of_the_model_at_every_step(builtin):
    """The default stays greedy: the oracle is a hand-written greedy loop (a full forward pass of the
    model per step, the argmax appended) whose decoded text must be the generated text; a tiny
    temperature (the zero-temperature limit of sampling) draws the same text."""
    import torch

    generator, image = builtin
    out, messages, picture = _round_one(generator, image)
    processor = generator.processor
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[[picture]], return_tensors="pt")
    n = inputs["input_ids"].shape[1]
    ids = inputs["input_ids"]
    with torch.no_grad():
        for _ in range(40):
            logits = generator.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     pixel_values=inputs["pixel_values"],
                                     pixel_attention_mask=inputs.get("pixel_attention_mask")).logits[0, -1]
            token = int(logits.argmax())
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
            if token == processor.tokenizer.eos_token_id:
                break
    assert out["tokens"] == ids.shape[1] - n
    assert processor.decode(ids[0, n:], skip_special_tokens=True).strip() == out["text"]
    cold, _, _ = _round_one(generator, image, temperature=1e-3, seed=5)
    assert cold["text"] == out["text"]


def test_sampling_is_seeded_and_leaves_the_callers_torch_rng_alone(builtin):
    import torch

    generator, image = builtin
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    a, _, _ = _round_one(generator, image, temperature=1.0, seed=3)
    b, _, _ = _round_one(generator, image, temperature=1.0, seed=3)
    others = [_round_one(generator, image, temperature=1.0, seed=s)[0]["text"] for s in (4, 5, 6)]
    # the caller's torch RNG is exactly where it was
    assert torch.equal(torch.get_rng_state(), state)
    assert a["text"] == b["text"] and a["mean_logprob"] == b["mean_logprob"]
    assert any(text != a["text"] for text in others)
    with pytest.raises(ValueError, match="seed"):
        _round_one(generator, image, temperature=0.7)
    with pytest.raises(ValueError, match="temperature"):
        _round_one(generator, image, seed=1)
    with pytest.raises(ValueError, match="temperature"):
        _round_one(generator, image, temperature=0.0, seed=1)


def test_asset_generator_seed_gives_one_reproducible_generation_and_greedy_by_default(builtin):
    generator, image = builtin
    greedy = generator.generate(image)
    assert greedy["seed"] is None and greedy["temperature"] is None
    assert generator.generate(image)["part_texts"] == greedy["part_texts"]
    one = generator.generate(image, seed=1)
    again = generator.generate(image, seed=1)
    assert (one["global_text"], one["part_texts"]) == (again["global_text"], again["part_texts"])
    assert one["seed"] == 1 and one["temperature"] == 0.7


# -- the attempt loop with a stub generator, decoder and gate -----------------------------------------

class _World:
    def __init__(self, seed):
        self.seed = seed


class _Asset:
    def __init__(self, seed):
        self.world = _World(seed)


class _Stub:
    """Generates a real library annotation; ``unparseable`` seeds raise as an unparseable generation."""

    path = "stub"

    def __init__(self, unparseable=()):
        self.calls = []
        self.unparseable = set(unparseable)
        self.annotation = library_generate("cabinet", object_rng(0, 0), seed=0).annotation

    def generate(self, image, **kwargs):
        self.calls.append(kwargs)
        seed = kwargs.get("seed")
        if seed in self.unparseable:
            parse_global("no object here")
        return {"annotation": self.annotation, "voxels": {"seed": seed}, "resolution": 16, "tokens": 7,
                "mean_logprob": -0.1, "seconds": 0.0, "repairs": [], "part_texts": {}, "global_text": "",
                "dropped_cuboids": {}}


def _build(undecodable=()):
    def build(annotation, voxels, resolution):
        if voxels["seed"] in undecodable:
            raise GenerationParseError("no part has any geometry after decoding")
        return _Asset(voxels["seed"]), [f"decoded seed {voxels['seed']}"]
    return build


def _gate(passing):
    def gate(world):
        ok = world.seed in passing
        return {"passed": ok, "failed": [] if ok else ["rest"]}
    return gate


def test_attempts_stop_at_the_first_asset_the_gate_passes_and_record_all():
    from physforge.assets.from_image import generate_verified

    stub = _Stub()
    result = generate_verified(stub, np.zeros((8, 8, 3), np.uint8), attempts=5, temperature=0.5,
                               gate=_gate({2, 3}), build=_build())
    assert stub.calls == [{}, {"seed": 1, "temperature": 0.5}, {"seed": 2, "temperature": 0.5}]
    assert [(a["seed"], a["gate_passed"], a["failed"], a["kept"]) for a in result.attempts] == [
        (None, False, ["rest"], False), (1, False, ["rest"], False), (2, True, [], True)]
    assert result.kept == 2 and result.asset.world.seed == 2 and result.report["passed"]
    assert result.notes == ["decoded seed 2"]
    # a train-split image's exclusion reaches every attempt (retrieval never returns the object itself)
    stub = _Stub()
    generate_verified(stub, np.zeros((8, 8, 3), np.uint8), attempts=3, gate=_gate(set()), build=_build(),
                      exclude_object="train-box-0001")
    assert [c["exclude_object"] for c in stub.calls] == ["train-box-0001"] * 3


def test_when_no_attempt_passes_the_greedy_one_is_kept_or_the_first_that_decoded():
    from physforge.assets.from_image import generate_verified

    image = np.zeros((8, 8, 3), np.uint8)
    none_pass = generate_verified(_Stub(), image, attempts=3, gate=_gate(set()), build=_build())
    assert none_pass.kept == 0 and none_pass.asset.world.seed is None and len(none_pass.attempts) == 3
    # greedy does not parse, seed 1 fails the gate, seed 2 does not decode: seed 1's asset is kept
    mixed = generate_verified(_Stub(unparseable={None}), image, attempts=3, gate=_gate(set()),
                              build=_build(undecodable={2}))
    assert [(a["parsed"], a["decoded"]) for a in mixed.attempts] == [(False, False), (True, True), (True, False)]
    assert mixed.kept == 1 and mixed.asset.world.seed == 1
    assert "dimensions_cm" in mixed.attempts[0]["error"] and "no part" in mixed.attempts[2]["error"]
    # parsed but never decoded: the greedy generation is kept without an asset, with its error
    undecoded = generate_verified(_Stub(), image, attempts=2, gate=_gate(set()), build=_build(undecodable={None, 1}))
    assert undecoded.kept == 0 and undecoded.asset is None and isinstance(undecoded.error, GenerationParseError)
    with pytest.raises(GenerationParseError, match="dimensions_cm") as caught:
        generate_verified(_Stub(unparseable={None, 1}), image, attempts=2, gate=_gate(set()), build=_build())
    assert len(caught.value.attempts) == 2


def test_one_attempt_is_the_greedy_path_and_no_gate_retries_only_unbuildable_generations():
    from physforge.assets.from_image import generate_verified

    image = np.zeros((8, 8, 3), np.uint8)
    stub = _Stub()
    single = generate_verified(stub, image, attempts=1, gate=_gate(set()), build=_build())
    assert stub.calls == [{}] and single.kept == 0 and not single.report["passed"]
    stub = _Stub()
    ungated = generate_verified(stub, image, attempts=4, gate=False, build=_build(undecodable={None}))
    assert len(stub.calls) == 2 and ungated.kept == 1 and ungated.report is None
    assert ungated.attempts[1]["gate_passed"] is None


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "4", None])
def test_bad_attempt_counts_are_refused_naming_the_field(bad):
    from physforge.assets.from_image import asset_from_image, generate_verified
    from physforge.assets.image_eval import AssetEvalConfig, AssetEvalConfigError

    with pytest.raises(ValueError, match="attempts"):
        generate_verified(_Stub(), np.zeros((8, 8, 3), np.uint8), attempts=bad, gate=False, build=_build())
    with pytest.raises(ValueError, match="attempts is"):
        asset_from_image(os.path.join(EXAMPLES, "cabinet.png"), "/nonexistent/never", generator=_Stub(),
                         attempts=bad)
    with pytest.raises(AssetEvalConfigError, match="attempts"):
        AssetEvalConfig(data="d", out="o", attempts=bad)


def test_cli_refuses_bad_attempts_before_loading_anything_and_defaults_agree(tmp_path):
    import inspect

    from typer.testing import CliRunner

    from physforge.assets.from_image import DEFAULT_ATTEMPTS
    from physforge.assets.image_eval import AssetEvalConfig
    from physforge.cli import asset as asset_cli
    from physforge.cli.main import app

    result = CliRunner().invoke(app, ["asset", "from-image", os.path.join(EXAMPLES, "cabinet.png"), "--out",
                                      str(tmp_path / "x"), "--attempts", "0"])
    assert result.exit_code == 2 and "--attempts" in result.output and not (tmp_path / "x").exists()
    result = CliRunner().invoke(app, ["asset", "eval", "--data", str(tmp_path), "--out", str(tmp_path / "e"),
                                      "--attempts", "0"])
    assert result.exit_code == 2 and "attempts" in result.output
    # the eval measures what from-image gives users: one default everywhere
    for command in (asset_cli.from_image, asset_cli.eval_command):
        assert inspect.signature(command).parameters["attempts"].default.default == DEFAULT_ATTEMPTS
    assert AssetEvalConfig(data="d", out="o").attempts == DEFAULT_ATTEMPTS


def test_from_image_records_its_attempts_and_one_attempt_writes_the_greedy_asset(builtin, tmp_path):
    from physforge.assets.from_image import asset_from_image

    generator, image = builtin
    greedy = generator.generate(image)
    single = asset_from_image(os.path.join(EXAMPLES, "cabinet.png"), tmp_path / "one", generator=generator,
                              attempts=1)
    written = json.loads((tmp_path / "one" / "generation.json").read_text())
    assert written["global_text"] == greedy["global_text"]
    assert written["part_texts"] == {str(k): v for k, v in greedy["part_texts"].items()}
    assert len(written["attempts"]) == 1 and written["attempt_kept"] == 1 and written["attempts"][0]["seed"] is None
    verified = asset_from_image(os.path.join(EXAMPLES, "cabinet.png"), tmp_path / "four", generator=generator,
                                attempts=4)
    record = json.loads((tmp_path / "four" / "generation.json").read_text())
    attempts = record["attempts"]
    assert 1 <= len(attempts) <= 4 and record["attempt_kept"] == next(a["attempt"] for a in attempts if a["kept"])
    assert [a["seed"] for a in attempts] == [None, 1, 2, 3][:len(attempts)]
    # it stopped at the first attempt the gate passed, or made all four
    passed = [a["gate_passed"] for a in attempts]
    assert (passed[-1] and not any(passed[:-1])) or (len(attempts) == 4 and not any(passed))
    if single["report"]["passed"]:
        assert len(attempts) == 1 and record["global_text"] == written["global_text"]
    assert verified["generation"]["gate_passed"] == verified["report"]["passed"]
