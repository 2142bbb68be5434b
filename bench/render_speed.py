"""Render frames/s for RGB, depth and segmentation at 128² and 256² (headless, shadows off).

    python bench/render_speed.py         # prints JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from physforge.sim import RenderConfig, SceneRenderer, Simulator  # noqa: E402
from physforge.world import load_world  # noqa: E402

FRAMES = 60


def main() -> None:
    world = load_world(Path(__file__).resolve().parents[1] / "examples" / "collision.json")
    sim = Simulator(world)
    results = []
    for size in (128, 256):
        for shadows in (False, True):
            with SceneRenderer(sim.compiled, RenderConfig(size, size, shadows=shadows)) as renderer:
                for kind in ("rgb", "depth", "segmentation"):
                    if shadows and kind != "rgb":
                        continue
                    render = getattr(renderer, kind)
                    render(sim.data, "front")  # warm up
                    t0 = time.perf_counter()
                    for _ in range(FRAMES):
                        render(sim.data, "front")
                    fps = FRAMES / (time.perf_counter() - t0)
                    results.append({"size": size, "kind": kind, "shadows": shadows, "fps": round(fps, 1)})
    print(json.dumps({"benchmark": "render_speed", "gl": os.environ.get("MUJOCO_GL"), "frames": FRAMES,
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
