"""The HTML report writer (self-contained: every image/clip is a data URI; the page parses),
the viewer's JSON API over a tiny dataset (filters match the questions' own columns, pages are
read lazily row group by row group), and the report builders on real output folders."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pyarrow.parquet as pq
import pytest

from physforge.report import Report
from physforge.report.html import environment

SMALL = dict(width=48, height=48, num_frames=3, fps=4.0, state_fps=20.0, plausibility_fraction=0.0,
             perturbation_trials=0, ood_params_fraction=0.15, ood_compositional_fraction=0.15)


class _Links(HTMLParser):
    """Every src/href in a page (an independent parse of what a browser would fetch)."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href"):
                self.urls.append((tag, name, value))


def _parse(text: str) -> _Links:
    parser = _Links()
    parser.feed(text)
    return parser


def test_report_is_self_contained_and_embeds_what_it_was_given(tmp_path):
    import imageio.v3 as iio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    clip = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42")  # embedded byte for byte, never decoded
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    report = Report("a <test> report", command=["physforge", "data", "generate", "--out", "a b"])
    report.add_table([{"model": "x", "accuracy": 0.5}, {"model": "<y>", "accuracy": 0.25, "n": 3}], caption="t")
    report.add_image(image, caption="image").add_plot(figure).add_clip(clip, fps=5).add_clip(mp4)
    report.add_json({"nan": float("nan")}).add_status(False, "gate")
    path = report.write(tmp_path / "out" / "report.html")
    text = path.read_text()
    parsed = _parse(text)
    assert parsed.urls and all(value.startswith("data:") for _, _, value in parsed.urls)
    assert "<test>" not in text and "&lt;y&gt;" in text  # user text is escaped
    uris = [value for _, _, value in parsed.urls]
    png = base64.b64decode(uris[0].split(",", 1)[1])
    np.testing.assert_array_equal(iio.imread(png, extension=".png"), image)  # lossless round trip
    gif = iio.imread(base64.b64decode(uris[2].split(",", 1)[1]), extension=".gif", index=None)
    assert gif.shape[0] == 4
    assert uris[3] == "data:video/mp4;base64," + base64.b64encode(mp4.read_bytes()).decode()
    assert "physforge data generate --out &#x27;a b&#x27;" in text  # the exact, re-runnable command
    versions = environment()
    assert set(versions) == {"physforge", "mujoco", "torch", "python"}
    assert all(f"{k} {v}" in text for k, v in versions.items())
    assert not list(path.parent.glob(".*tmp*"))


def test_report_refuses_bad_input_with_the_fix(tmp_path):
    report = Report("r")
    with pytest.raises(ValueError, match="pass columns"):
        report.add_table([[1, 2]])
    with pytest.raises(ValueError, match="uint8"):
        report.add_image(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="unsupported file type"):
        report.add_clip(tmp_path / "x.avi")
    with pytest.raises(ValueError, match="relative path"):
        report.add_link("https://example.com/x", "x")
    with pytest.raises(ValueError, match="title"):
        Report("")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A 9-scene dataset written by the CLI (which also writes its report.html)."""
    from typer.testing import CliRunner

    from physforge.cli.main import app
    from physforge.data import DataConfig

    folder = tmp_path_factory.mktemp("view")
    config = DataConfig(seed=2, shard_size=3, families={"collisions": 1, "projectiles": 1, "ramps": 1},
                        heldout_families=("ramps",), **SMALL)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["data", "generate", "--config", str(folder / "config.json"), "--out",
                                      str(folder / "data"), "--num-scenes", "9", "--no-progress"])
    assert result.exit_code == 0, result.output
    return folder / "data"


def _all_questions(folder):
    return [row for path in sorted((folder / "questions").glob("*/*.parquet")) for row in pq.read_table(path).to_pylist()]


@pytest.fixture()
def server(dataset):
    from physforge.viewer import make_server, url_of

    httpd = make_server(dataset, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, url_of(httpd)
    httpd.shutdown()
    httpd.server_close()


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read(), response.headers["Content-Type"]


def test_viewer_api_pages_and_filters_a_dataset_lazily(server, dataset):
    httpd, url = server
    source = httpd.source
    questions = _all_questions(dataset)
    # opening read only the index columns of the questions and the scene ids: no images, no texts
    assert {columns for _, _, columns in source.groups.reads} == {
        ("question_id", "scene_id", "split", "family", "question_type"), ("scene_id",)}
    summary = json.loads(_get(url + "api/summary")[0])
    assert summary["kind"] == "dataset" and summary["num_questions"] == len(questions)
    assert summary["facets"]["family"] == {f: sum(q["family"] == f for q in questions)
                                           for f in sorted({q["family"] for q in questions})}
    family = max(summary["facets"]["family"], key=summary["facets"]["family"].get)
    expected = [q["question_id"] for q in questions if q["family"] == family]
    seen, offset = [], 0
    while True:
        before = len(source.groups.reads)
        page = json.loads(_get(f"{url}api/questions?family={family}&offset={offset}&limit=4")[0])
        assert page["total"] == len(expected)
        new_reads = source.groups.reads[before:]
        # a page reads at most the row groups its (up to 4) questions live in, and never an image column
        assert len(new_reads) <= 4 and all("frames" not in cols for _, _, cols in new_reads)
        if not page["questions"]:
            break
        assert all(q["family"] == family for q in page["questions"])
        seen += [q["question_id"] for q in page["questions"]]
        offset += 4
    assert seen == expected  # every matching question once, in dataset order
    question = next(q for q in questions if q["family"] == family and q["options"])
    scene = json.loads(_get(f"{url}api/scene?id={question['scene_id']}")[0])
    row = next(r for path in sorted((dataset / "scenes").glob("*/*.parquet"))
               for r in pq.read_table(path).to_pylist() if r["scene_id"] == question["scene_id"])
    assert [e["type"] for e in scene["events"]] == [e["type"] for e in row["events"]]
    assert scene["latent"] == row["latent"] and scene["num_frames"] == len(row["frames"])
    before = len(source.groups.reads)
    frame, kind = _get(f"{url}media/frame?id={question['scene_id']}&i=1")
    assert kind == "image/png" and frame == row["frames"][1]["bytes"]
    assert len({(f, g) for f, g, _ in source.groups.reads[before:]}) <= 1  # one row group, one column
    clip, kind = _get(f"{url}media/clip?id={question['scene_id']}")
    assert kind == "image/gif" and clip[:6] == b"GIF89a"


def test_viewer_api_errors_name_the_argument(server):
    _, url = server
    for path, message in (("api/questions?limit=0", "limit"), ("api/questions?offset=x", "offset"),
                          ("api/scene?id=nope", "no scene"), ("media/frame?id=nope&i=0", "no scene"),
                          ("files/../../etc/passwd", "inside the viewed folder")):
        with pytest.raises(urllib.error.HTTPError) as error:
            _get(url + path)
        assert error.value.code == 400 and message in json.loads(error.value.read())["error"]


def test_open_folder_refuses_other_folders(tmp_path):
    from typer.testing import CliRunner

    from physforge.cli.main import app
    from physforge.viewer import ViewerError, open_folder

    with pytest.raises(ViewerError, match="not a dataset"):
        open_folder(tmp_path)
    for args, message in (([str(tmp_path / "missing")], "is not a folder"), ([str(tmp_path)], "not a dataset"),
                          ([str(tmp_path), "--port", "70000"], "port")):
        result = CliRunner().invoke(app, ["view", *args, "--no-browser"])
        assert result.exit_code == 2 and message in " ".join(result.output.split())  # rich wraps lines


def test_data_generate_writes_a_report_whose_counts_match_the_dataset(dataset):
    text = (dataset / "report.html").read_text()
    info = json.loads((dataset / "meta" / "info.json").read_text())
    for split, counts in info["splits"].items():
        assert f"<td>{split}</td><td class='num'>{counts['scenes']}</td><td class='num'>{counts['questions']}</td>" \
               in text
    assert all(value.startswith("data:") for _, _, value in _parse(text).urls)
