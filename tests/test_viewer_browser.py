"""The viewer end to end in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): filter a dataset and open a question, look at an asset, open a run's report.

Runs in CI (``make test`` installs chromium); skipped only outside CI when Chromium is missing."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

CHROMIUM = os.environ.get("PHYSFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PHYSFORGE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1000")
WAIT_S = 60


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is missing (apt-get install chromium chromium-driver, or make setup)"
    return None


if _missing() and not os.environ.get("CI"):
    pytest.skip(_missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = _missing()
    if missing:  # in CI a missing browser is a failure, not a skip
        pytest.fail(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


class _Served:
    def __init__(self, folder):
        from physforge.viewer import make_server, url_of

        self.httpd = make_server(folder, port=0)
        self.url = url_of(self.httpd)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self.url

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def _loaded(driver, element_id):
    """The <img id=element_id> has decoded (a broken image has naturalWidth 0)."""
    return _wait(driver, lambda d: d.execute_script(
        f"const i = document.getElementById('{element_id}'); return i && i.complete && i.naturalWidth > 0;"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from physforge.data import DataConfig
    from physforge.data.generate import generate_dataset

    out = tmp_path_factory.mktemp("browser") / "data"
    generate_dataset(DataConfig(seed=4, width=48, height=48, num_frames=3, fps=4.0, state_fps=20.0, shard_size=4,
                                plausibility_fraction=0.0, perturbation_trials=0,
                                families={"collisions": 1, "projectiles": 1}), out, 6)
    return out


def test_dataset_page_filters_and_shows_a_question(browser, dataset):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    questions = [r for p in sorted((dataset / "questions").glob("*/*.parquet")) for r in pq.read_table(p).to_pylist()]
    family = "projectiles" if any(q["family"] == "projectiles" for q in questions) else questions[0]["family"]
    expected = [q for q in questions if q["family"] == family]
    with _Served(dataset) as url:
        browser.get(url)
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".q-row"))
        Select(browser.find_element(By.ID, "filter-family")).select_by_value(family)
        _wait(browser, lambda d: "family=" + family in (d.find_element(By.ID, "questions").get_attribute("data-ready")
                                                         or ""))
        rows = browser.find_elements(By.CSS_SELECTOR, ".q-row")
        assert rows and {r.get_attribute("data-family") for r in rows} == {family}
        assert browser.find_element(By.ID, "page-info").text.endswith(f"of {len(expected)}")
        with_options = next(k for k, q in enumerate(expected[:len(rows)]) if q["options"])
        rows[with_options].click()
        _wait(browser, lambda d: d.find_elements(By.ID, "question-text"))
        question = expected[with_options]
        assert browser.find_element(By.ID, "question-text").text == question["question"]
        assert browser.find_element(By.ID, "answer").text == question["answer"]
        shown = [(li.get_attribute("class"), li.text) for li in browser.find_elements(By.CSS_SELECTOR, "#options li")]
        assert shown == [("correct", f"✓ {o['label']}. {o['text']}") if o["correct"] else
                         ("incorrect", f"✗ {o['label']}. {o['text']}") for o in question["options"]]
        _loaded(browser, "clip")
        scene = next(r for p in sorted((dataset / "scenes").glob("*/*.parquet")) for r in pq.read_table(p).to_pylist()
                     if r["scene_id"] == question["scene_id"])
        assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline .event")) == len(scene["events"])
        latent = browser.find_element(By.ID, "latent").text
        assert all(item["key"] in latent for item in scene["latent"])


def test_asset_page_shows_previews_and_the_gate(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from physforge.assets.build import BuildConfig, build_asset
    from physforge.assets.export import write_asset
    from physforge.assets.library import generate, object_rng

    source = generate("box_with_lid", object_rng(0, 0), seed=0, name="box")
    gate = write_asset(build_asset(source, BuildConfig(cache_dir=tmp_path / "cache")), tmp_path / "box")
    with _Served(tmp_path / "box") as url:
        browser.get(url)
        _wait(browser, lambda d: d.find_elements(By.ID, "gate-status"))
        assert browser.find_element(By.ID, "gate-status").text == ("PASS" if gate["passed"] else "FAIL")
        _loaded(browser, "turntable")
        _loaded(browser, "sweep")
        annotation = json.loads(browser.find_element(By.ID, "annotation").text)
        assert annotation == json.loads((tmp_path / "box" / "annotation.json").read_text())
        gate_text = browser.find_element(By.ID, "gate").text
        assert all(check in gate_text for check in gate["checks"])


def test_run_page_embeds_its_report_and_step_reports(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from physforge.report import Report

    run = tmp_path / "run"
    Report("sub step").add_text("inner marker").write(run / "step" / "report.html")
    Report("the run").add_table([{"metric": "success", "value": 0.75}]).add_link("step/report.html", "step") \
        .write(run / "report.html")
    shutil.copy(run / "report.html", run / "copy.html")
    with _Served(run) as url:
        browser.get(url)
        _wait(browser, lambda d: d.find_elements(By.ID, "report"))
        browser.switch_to.frame(browser.find_element(By.ID, "report"))
        _wait(browser, lambda d: d.find_elements(By.TAG_NAME, "h1"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "the run"
        assert "0.75" in browser.find_element(By.TAG_NAME, "table").text
        browser.find_element(By.LINK_TEXT, "step").click()
        _wait(browser, lambda d: "inner marker" in d.find_element(By.TAG_NAME, "body").text)
        browser.switch_to.default_content()
        links = browser.find_elements(By.CSS_SELECTOR, "a[target=report]")
        assert [a.text for a in links] == ["step/report.html"]
