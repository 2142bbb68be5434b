"""Regenerate the README's pictures (docs/img/*.png) from a finished demo folder.

    physforge demo --out runs/demo
    python docs/make_images.py runs/demo            # writes docs/img/

Pictures of what each capability produces: the asset's turntable and joint sweep, a dataset
clip, the reasoning accuracy plot, dynamics samples before/after DPO, a robot rollout, and
screenshots of the demo's index report and of the viewer (headless Chromium via Selenium).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np

OUT = Path(__file__).parent / "img"


def _strip(frames, height: int = 128) -> np.ndarray:
    """Frames side by side, each resized to ``height`` px (Lanczos: screenshots stay legible)."""
    from PIL import Image

    resized = []
    for frame in frames:
        frame = np.asarray(frame)[..., :3]
        width = round(frame.shape[1] * height / frame.shape[0])
        resized.append(np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS)))
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([x for f in resized for x in (f, gap)][:-1], axis=1)


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = iio.imread(path, index=None) if path.suffix == ".gif" else np.stack(list(iio.imiter(path)))
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in picks]


def _save(name: str, image: np.ndarray, colors: int | None = None) -> None:
    """PNG; ``colors``: a palette of that many colours (screenshots: a third of the bytes)."""
    from PIL import Image

    path = OUT / name
    picture = Image.fromarray(image)
    if colors:
        picture = picture.quantize(colors=colors)
    picture.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def _browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _screenshot(driver, name: str, scale: float = 0.75) -> None:
    png = driver.get_screenshot_as_png()
    image = iio.imread(png)[..., :3]
    height = int(image.shape[0] * scale)
    _save(name, _strip([image], height), colors=64)


def main(demo: Path) -> None:
    import pyarrow.parquet as pq

    from physforge.report.builders import decode_frames
    from physforge.sim.preview import joint_sweep, turntable
    from physforge.viewer import make_server, url_of
    from physforge.world import load_world

    OUT.mkdir(parents=True, exist_ok=True)
    world = load_world(demo / "asset" / "world.json")
    spin = turntable(world, frames=8, size=160)
    sweep, _ = joint_sweep(world, frames_per_joint=4, size=160)
    _save("asset.png", _strip([spin[0], spin[2], sweep[2], sweep[len(sweep) // 2 + 2]]))
    first = sorted((demo / "data" / "scenes").glob("*/*.parquet"))[0]
    frames = decode_frames(pq.read_table(first, columns=["frames"]).column(0)[0].as_py())
    _save("data.png", _strip(frames))
    shutil.copy(sorted((demo / "reason" / "eval").glob("accuracy_*.png"))[0], OUT / "reason.png")
    print(f"wrote {OUT / 'reason.png'}")
    before = _video_frames(demo / "dynamics" / "samples" / "before" / "sample0.mp4", 3)
    after = _video_frames(demo / "dynamics" / "samples" / "after" / "sample0.mp4", 3)
    _save("dynamics.png", _strip(before + after, 112))
    videos = sorted((demo / "robot" / "dataset").rglob("*.mp4"))
    if videos:
        _save("robot.png", _strip(_video_frames(videos[0], 4)))
    driver = _browser(1200, 900)
    try:
        driver.get((demo / "report.html").resolve().as_uri())
        _screenshot(driver, "report.png")
        server = make_server(demo / "data", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import WebDriverWait

            driver.get(url_of(server))
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".q-row"))
            driver.find_elements(By.CSS_SELECTOR, ".q-row")[0].click()
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "const i = document.getElementById('clip'); return i && i.complete && i.naturalWidth > 0;"))
            _screenshot(driver, "viewer.png")
        finally:
            server.shutdown()
    finally:
        driver.quit()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, nargs="?", default=Path("runs/demo"), help="A finished demo folder.")
    main(parser.parse_args().demo)
