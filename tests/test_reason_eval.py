"""The evaluation harness: its scores are the data engine's grader's on known predictions, the
majority baseline matches an independent count, an OpenAI-compatible endpoint on 127.0.0.1 is
asked with base64 PNG images (and without, for the blind baseline), and a PhysEncoder run is
scored through the CLI with its untrained and blind baselines."""

import base64
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from physforge.data.grade import grade
from physforge.reason.errors import EndpointError, ReasonConfigError
from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCORED = ("test", "test_ood_params", "test_ood_family", "test_ood_compositional")


def _questions(folder, splits):
    rows = []
    for split in splits:
        for path in sorted((folder / "questions" / split).glob("*.parquet")):
            rows.extend(pq.read_table(path).to_pylist())
    return rows


def _wrong(question):
    return {"bool": "no" if question["answer"] == "yes" else "yes", "count": "99", "number": "1e9", "name": "nothing",
            "choice": "H", "multi": "H"}[question["answer_type"]]


def test_harness_scores_equal_the_grader_on_known_predictions(tiny_dataset, tmp_path):
    from physforge.reason.harness import EvalConfig, evaluate

    questions = _questions(tiny_dataset, SCORED)
    predictions = {q["question_id"]: (q["answer"] if k % 3 else _wrong(q)) for k, q in enumerate(questions) if k % 7}
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps({"question_id": k, "prediction": v}) + "\n" for k, v in predictions.items()))
    result = evaluate(EvalConfig(data=str(tiny_dataset), out=str(tmp_path / "eval"), predictions=str(path),
                                 blind_steps=0))
    expected = grade(predictions, questions)
    model = result["models"][0]
    assert model["grade"] == expected and model["grade"]["missing_predictions"] > 0
    assert 0 < expected["overall"]["accuracy"] < 1
    for row in model["by_type_split"]:  # roll-up over families == grading those questions alone
        subset = [q for q in questions if q["question_type"] == row["question_type"] and q["split"] == row["split"]]
        assert row["accuracy"] == grade(predictions, subset)["overall"]["accuracy"]
        assert row["questions"] == len(subset)
    # majority baseline: the most frequent training answer per template (independent count)
    train = _questions(tiny_dataset, ["train"])
    counts = {}
    for q in train:
        counts.setdefault(q["template"], Counter())[q["answer"]] += 1
    majority = next(m for m in result["models"] if m["name"] == "majority")
    written = {json.loads(line)["question_id"]: json.loads(line)["prediction"]
               for line in (tmp_path / "eval" / "predictions" / "majority.jsonl").read_text().splitlines()}
    for q in questions:
        if q["template"] in counts and q["answer_type"] != "number":
            top = max(counts[q["template"]].values())
            assert counts[q["template"]][written[q["question_id"]]] == top
    assert majority["grade"] == grade(written, questions)
    out = tmp_path / "eval"
    report = (out / "report.md").read_text()
    assert "majority" in report and "## test_ood_family" in report
    for split in result["splits"]:
        assert (out / f"accuracy_{split}.png").read_bytes().startswith(PNG_SIGNATURE)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(result["splits"])
    assert any("untrained" in m for m in result["missing_baselines"])


class _ChatServer:
    """A chat-completions server on 127.0.0.1 that answers from the prompt's answer instruction
    (yes / 1 / 0.5 / red / A / none), records how many images each request carried, and refuses
    after ``limit`` requests (so a runaway client cannot loop)."""

    ANSWERS = {"Answer yes or no.": "yes", "Answer with a whole number.": "1",
               "Answer with a number in SI units.": "0.5", "Answer with one word.": "red",
               "Answer with the letter of the correct option.": "A"}

    def __init__(self, limit=400, fail=False):
        self.images, self.limit, self.fail = [], limit, fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.fail or len(outer.images) >= outer.limit or self.path != "/v1/chat/completions":
                    self.send_response(500)
                    self.end_headers()
                    return
                content = body["messages"][0]["content"]
                pictures = [base64.b64decode(c["image_url"]["url"].split(",", 1)[1]) for c in content
                            if c["type"] == "image_url"]
                assert all(p.startswith(PNG_SIGNATURE) for p in pictures)
                text = content[-1]["text"]
                outer.images.append(len(pictures))
                answer = next((a for k, a in outer.ANSWERS.items() if text.endswith(k)), "none")
                reply = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": answer}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_endpoint_model_is_scored_with_images_and_blind(tiny_dataset, tmp_path):
    from physforge.reason.harness import EvalConfig, evaluate

    questions = _questions(tiny_dataset, ["test", "test_ood_family"])
    with _ChatServer() as server:
        result = evaluate(EvalConfig(data=str(tiny_dataset), out=str(tmp_path / "eval"), endpoint_url=server.url,
                                     endpoint_model="echo", splits=("test", "test_ood_family"), blind_steps=0,
                                     timeout_s=10))
    answers = {"bool": "yes", "count": "1", "number": "0.5", "name": "red", "choice": "A", "multi": "none"}
    expected = grade({q["question_id"]: answers[q["answer_type"]] for q in questions}, questions)
    endpoint, blind = result["models"][0], next(m for m in result["models"] if m["name"].startswith("blind"))
    assert endpoint["name"] == "endpoint:echo" and endpoint["grade"] == expected and blind["grade"] == expected
    shown = sorted(len(q["frame_indices"]) for q in questions)
    assert sorted(server.images[: len(questions)]) == shown  # every frame a question shows, as a PNG
    assert server.images[len(questions):] == [0] * len(questions)  # the blind pass sends none
    assert endpoint["questions_per_second"] > 0


def test_endpoint_errors_are_bounded_and_named(tiny_dataset, tmp_path):
    from physforge.reason.harness import EvalConfig, evaluate

    with _ChatServer(fail=True) as server:
        with pytest.raises(EndpointError, match=r"127\.0\.0\.1.*HTTP 500"):
            evaluate(EvalConfig(data=str(tiny_dataset), out=str(tmp_path / "e"), endpoint_url=server.url,
                                endpoint_model="m", retries=1, blind_steps=0, timeout_s=5))
        assert len(server.images) == 0
    with pytest.raises(ReasonConfigError, match="exactly one of --model"):
        EvalConfig(data="d", out="o")
    with pytest.raises(ReasonConfigError, match="needs --endpoint-model"):
        EvalConfig(data="d", out="o", endpoint_url="http://127.0.0.1:1/v1")


def test_cli_eval_of_a_physencoder_run_with_all_baselines(tiny_dataset, tmp_path):
    from physforge.cli.main import app
    from physforge.reason import TrainConfig, train_encoder

    run = tmp_path / "run"
    train_encoder(TrainConfig(data=str(tiny_dataset), out=str(run), steps=2, batch_size=8, val_split=""))
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["reason", "eval", "--data", str(tiny_dataset), "--out", str(out), "--model",
                                      str(run), "--blind-steps", "2", "--max-questions", "4"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    names = [m["name"] for m in saved["models"]]
    assert names[0].startswith("physencoder:") and names[1:] == ["majority", "blind", "untrained"]
    questions = {q["question_id"]: q for q in _questions(tiny_dataset, SCORED)}
    assert all(n <= 4 for n in saved["questions_per_split"].values())
    for model in saved["models"]:  # each model's stored grade is the grader's on its written predictions
        lines = (out / "predictions" / (model["name"].replace(":", "_").replace("/", "_") + ".jsonl")).read_text()
        predicted = {json.loads(x)["question_id"]: json.loads(x)["prediction"] for x in lines.splitlines()}
        asked = [questions[k] for k in predicted]
        assert len(asked) == saved["questions"] and model["grade"] == grade(predicted, asked)
    assert saved["missing_baselines"] == []
