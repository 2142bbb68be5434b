"""A tiny dataset generated end to end: determinism, pool == serial, write -> read round trip,
Hugging Face loading, exports, validator, grading CLI, rejected unstable scenes."""

import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from physforge.cli.main import app
from physforge.data import DataConfig, DataConfigError, DatasetValidationError
from physforge.data.export import export_dataset
from physforge.data.generate import content_hash, generate_dataset
from physforge.data.questions import Balancer, balance_rows
from physforge.data.scene import generate_scene
from physforge.data.validate import validate_dataset
from physforge.errors import SimulationUnstable
from physforge.sim.render import RenderConfig, SceneRenderer

CONFIG = DataConfig(seed=5, width=32, height=32, num_frames=4, fps=4.0, state_fps=20.0, shard_size=3,
                    plausibility_fraction=0.5, ood_params_fraction=0.15, ood_compositional_fraction=0.15)
NUM_SCENES = 9


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "ds"
    info = generate_dataset(CONFIG, folder, NUM_SCENES, workers=1)
    return folder, info


def test_generation_is_deterministic_and_the_pool_gives_the_same_bytes(dataset, tmp_path):
    folder, info = dataset
    again = tmp_path / "again"
    pooled = tmp_path / "pooled"
    assert generate_dataset(CONFIG, again, NUM_SCENES, workers=1)["content_hash"] == info["content_hash"]
    assert generate_dataset(CONFIG, pooled, NUM_SCENES, workers=2)["content_hash"] == info["content_hash"]
    assert _files(again) == _files(folder) == _files(pooled)  # parquet, info.json, card, shard summaries
    other = generate_dataset(DataConfig(**{**CONFIG.__dict__, "seed": 6}), tmp_path / "other", 3, workers=1)
    assert other["content_hash"] != info["content_hash"]


def test_dataset_is_valid_and_complete(dataset):
    folder, info = dataset
    assert validate_dataset(folder)["num_scenes"] == NUM_SCENES - info["rejected_unstable"]
    assert info["num_questions"] > 3 * NUM_SCENES
    assert set(info["splits"]) <= {"train", "val", "test", "test_ood_params", "test_ood_family",
                                   "test_ood_compositional"}
    card = (folder / "README.md").read_text()
    assert "Answer distribution per template" in card and info["content_hash"] in card
    features = info["features"]["scenes"]
    assert features["states.position"]["unit"] == "m" and features["depth"]["unit"] == "mm"
    config = json.loads((folder / "config.json").read_text())
    assert DataConfig.from_dict(config["config"]) == CONFIG and config["num_scenes"] == NUM_SCENES


def test_write_read_round_trip_matches_the_scenes_in_memory(dataset):
    folder, _ = dataset
    written = {}
    for path in sorted((folder / "scenes").glob("*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            written[row["scene_id"]] = row
    questions = {}
    for path in sorted((folder / "questions").glob("*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            questions[row["question_id"]] = row
    renderer = SceneRenderer(config=RenderConfig(CONFIG.width, CONFIG.height))
    generated = []
    for shard_start in range(0, NUM_SCENES, CONFIG.shard_size):
        balancer = Balancer()  # steers within a shard; the exact balance is over the whole dataset
        for index in range(shard_start, shard_start + CONFIG.shard_size):
            result = generate_scene(CONFIG, index, renderer, balancer)
            if result.scene is None:
                continue
            row = written[result.scene["scene_id"]]
            for key, value in result.scene.items():
                assert row[key] == value, key
            generated.extend(result.questions)
    renderer.close()
    kept, trimmed = balance_rows(generated)
    assert {q["question_id"] for q in kept} == set(questions)
    for q in kept:
        assert questions[q["question_id"]] == q
    # every yes/no template has as many "yes" as "no" answers
    counts = {}
    for q in questions.values():
        if q["answer_type"] == "bool":
            counts.setdefault(q["template"], []).append(q["answer"])
    assert counts and all(a.count("yes") == a.count("no") for a in counts.values()), counts


def test_loads_with_hugging_face_datasets_and_decodes_images(dataset):
    import datasets
    folder, info = dataset
    split = next(iter(info["splits"]))
    scenes = datasets.load_dataset("parquet", data_files={split: str(folder / "scenes" / split / "*.parquet")})[split]
    row = scenes[0]
    assert row["frames"][0].size == (CONFIG.width, CONFIG.height) and len(row["frames"]) == CONFIG.num_frames
    depth = np.asarray(row["depth"][0])
    assert depth.dtype in (np.uint16, np.int32) and depth.max() > 0
    ids = np.asarray(row["segmentation"][0])
    names = json.loads(row["world"])["bodies"]
    assert ids.max() <= len(names)
    assert len(row["states"]["position"]) == len(row["states"]["time"])
    questions = datasets.load_dataset("parquet", data_files={split: str(folder / "questions" / split / "*.parquet")})
    assert questions[split][0]["scene_id"].startswith("s5-")


def test_exports_trl_llava_webdataset(dataset, tmp_path):
    folder, info = dataset
    split = next(iter(info["splits"]))
    trl = export_dataset(folder, "trl", tmp_path / "trl")
    table = pq.read_table(next((trl / split).glob("*.parquet"))).to_pylist()
    example = table[0]
    user = example["messages"][0]["content"]
    assert sum(part["type"] == "image" for part in user) == len(example["images"]) > 0
    assert example["messages"][1]["content"][0]["text"] == example["answer"]
    llava = export_dataset(folder, "llava", tmp_path / "llava")
    records = json.loads((llava / f"{split}.json").read_text())
    first = records[0]
    assert first["conversations"][0]["value"].count("<image>") == len(first["image"])
    assert all((llava / p).is_file() for p in first["image"])
    web = export_dataset(folder, "webdataset", tmp_path / "web")
    with tarfile.open(next(web.glob(f"{split}-*.tar"))) as tar:
        names = tar.getnames()
    keys = {n.split(".", 1)[0] for n in names}
    assert all(f"{k}.json" in names for k in keys) and any(n.endswith(".png") for n in names)
    with pytest.raises(DataConfigError, match="unknown export format"):
        export_dataset(folder, "tfrecord")


def test_grade_cli_scores_answers_and_wrong_answers(dataset, tmp_path):
    folder, info = dataset
    rows = [r for p in sorted((folder / "questions").glob("*/*.parquet")) for r in pq.read_table(p).to_pylist()]
    right = tmp_path / "right.jsonl"
    right.write_text("".join(json.dumps({"question_id": r["question_id"], "prediction": r["answer"]}) + "\n"
                             for r in rows))
    result = CliRunner().invoke(app, ["data", "grade", str(right), "--dataset", str(folder)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["overall"]["accuracy"] == 1.0 and report["missing_predictions"] == 0
    assert {g["question_type"] for g in report["groups"]} >= {"quantitative", "counterfactual"}
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("".join(json.dumps({"question_id": r["question_id"], "prediction": "zebra"}) + "\n" for r in rows))
    report = json.loads(CliRunner().invoke(app, ["data", "grade", str(wrong), "--dataset", str(folder)]).stdout)
    assert report["overall"]["accuracy"] == 0.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "x"}\n')
    result = CliRunner().invoke(app, ["data", "grade", str(bad), "--dataset", str(folder)])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output


def test_validator_reports_tampering(dataset, tmp_path):
    folder, _ = dataset
    copy = tmp_path / "copy"
    for name, data in _files(folder).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    victim = sorted((copy / "questions").glob("*/*.parquet"))[0]
    victim.unlink()
    with pytest.raises(DatasetValidationError, match="content hash differs"):
        validate_dataset(copy)
    (copy / "meta" / "info.json").unlink()
    with pytest.raises(DatasetValidationError, match="meta/info.json is missing"):
        validate_dataset(copy)


def test_resuming_with_another_config_is_refused(dataset):
    folder, _ = dataset
    with pytest.raises(DataConfigError, match="different config or number of scenes"):
        generate_dataset(CONFIG, folder, NUM_SCENES + 1)


def test_unstable_scenes_are_rejected_and_counted(tmp_path, monkeypatch):
    import physforge.data.scene as scene_module

    class Exploding(scene_module.Simulator):
        def run(self, duration, fps, **kwargs):
            raise SimulationUnstable("test blow-up", 0.01)

    monkeypatch.setattr(scene_module, "Simulator", Exploding)
    info = generate_dataset(CONFIG, tmp_path / "ds", 2, workers=1)
    assert info["rejected_unstable"] == 2 and info["num_scenes"] == 0
    assert not list((tmp_path / "ds" / "scenes").glob("*/*.parquet"))


def test_scenes_are_streamed_to_disk_and_a_failed_shard_leaves_nothing(dataset, tmp_path, monkeypatch):
    folder, info = dataset
    # one row group per scene: a worker holds one scene's frames at a time, whatever the shard size
    for path in (folder / "scenes").glob("*/*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        assert metadata.num_row_groups == metadata.num_rows
    import physforge.data.generate as generate_module
    import physforge.data.scene as scene_module

    real = scene_module.generate_scene
    calls = []

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker died mid-shard")
        return real(*args, **kwargs)

    monkeypatch.setattr(scene_module, "generate_scene", failing_second)
    with pytest.raises(RuntimeError, match="mid-shard"):
        generate_module.generate_shard(CONFIG.to_dict(), str(tmp_path), 0, NUM_SCENES)
    assert len(calls) == 2 and not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_cli_config_validate_and_export(dataset, tmp_path):
    folder, info = dataset
    runner = CliRunner()
    config_path = tmp_path / "config.json"
    result = runner.invoke(app, ["data", "config", str(config_path), "--seed", "3"])
    assert result.exit_code == 0 and DataConfig.load(config_path).seed == 3
    result = runner.invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 0 and f"{info['num_questions']} questions" in result.output
    result = runner.invoke(app, ["data", "export", str(folder), "--format", "llava", "--out", str(tmp_path / "l")])
    assert result.exit_code == 0 and list((tmp_path / "l").glob("*.json"))
    result = runner.invoke(app, ["data", "validate", str(tmp_path)])
    assert result.exit_code == 2 and "meta/info.json is missing" in result.output


def test_answers_are_balanced_over_the_dataset_so_rare_minority_answers_survive(dataset, tmp_path):
    """A template whose minority answer turns up once every few shards: exact balance inside each
    shard would keep none of it; balancing over the dataset keeps every minority answer and as
    many of the majority. Finalising again gives the same bytes."""
    from physforge.data.generate import balance_questions

    folder, _ = dataset
    template_row = next(r for p in sorted((folder / "candidates").glob("*/*.parquet"))
                        for r in pq.read_table(p).to_pylist())
    schema = pq.read_schema(next((folder / "candidates").glob("*/*.parquet")))
    answers_per_shard = [["yes", "yes"], ["no"], ["yes", "yes"], ["no"], ["yes"]]
    out = tmp_path / "ds"
    for shard, answers in enumerate(answers_per_shard):
        rows = [template_row | {"split": "train", "template": "door_opens", "answer_type": "bool", "answer": a,
                                "question_id": f"{shard}-{k}"} for k, a in enumerate(answers)]
        path = out / "candidates" / "train" / f"shard-{shard:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    per_shard_kept = sum(len(balance_rows([{"template": "t", "answer_type": "bool", "answer": a} for a in answers])[0])
                         for answers in answers_per_shard)
    assert per_shard_kept == 0  # no shard has both answers
    result = balance_questions(out)
    kept = [r for p in sorted((out / "questions" / "train").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert sorted(r["answer"] for r in kept) == ["no", "no", "yes", "yes"]
    # the earliest "yes" answers are kept: shard 0's two (the latest surplus goes)
    assert [r["question_id"] for r in kept if r["answer"] == "yes"] == ["0-0", "0-1"]
    assert result["stats"]["balance_trimmed"] == 3
    first = {p.name: p.read_bytes() for p in (out / "questions" / "train").glob("*.parquet")}
    balance_questions(out)
    assert {p.name: p.read_bytes() for p in (out / "questions" / "train").glob("*.parquet")} == first
