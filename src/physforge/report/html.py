"""A self-contained HTML report: one file whose images, clips and plots are embedded as base64
data URIs, so it can be mailed, archived or opened offline and still shows everything.

    report = Report("reasoning evaluation")
    report.add_table([{"model": "encoder", "accuracy": 0.71}], caption="held-out")
    report.add_plot(figure)                       # a matplotlib Figure -> PNG
    report.add_image(rgb)                         # (H, W, 3) uint8, PNG bytes or a .png/.jpg path
    report.add_clip(frames, fps=10)               # (n, H, W, 3) uint8 -> GIF; or a .mp4/.gif path
    report.add_json(config, caption="config.json")
    report.write(out / "report.html")

Every report ends with the exact command line and the versions of physforge, MuJoCo, torch and
Python that produced it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Clips and images larger than this are refused: an HTML report is meant to open in a browser.
MAX_EMBED_BYTES = 48 * 1024 * 1024

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".mp4": "video/mp4", ".webm": "video/webm"}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:3px 9px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.4em 1em .8em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
img,video{max-width:100%;image-rendering:auto}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}
.pass{color:#0a7a2f;font-weight:600}.fail{color:#b3261e;font-weight:600}.meta{color:#666;font-size:.85em}
"""


def environment() -> dict[str, str]:
    """Versions of what produced an output: physforge, MuJoCo, torch (if installed), Python."""
    import physforge
    from physforge.sim import MUJOCO_VERSION

    versions = {"physforge": physforge.__version__, "mujoco": MUJOCO_VERSION}
    try:  # the installed wheel's version, without importing torch (seconds) just to print it
        versions["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:
        versions["torch"] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it again (``physforge ...`` for the console script)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("physforge", "__main__.py"):
        argv[0] = "physforge"
    return shlex.join(argv)


def data_uri(payload: bytes, mime: str) -> str:
    if len(payload) > MAX_EMBED_BYTES:
        raise ValueError(f"cannot embed {len(payload) / 1e6:.1f} MB of {mime} in a report (limit "
                         f"{MAX_EMBED_BYTES / 1e6:.0f} MB); pass a shorter clip or a smaller image")
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W), (H, W, 3) or (H, W, 4) uint8 -> PNG bytes."""
    import imageio.v3 as iio

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W[, 3|4]) uint8, got {image.shape} {image.dtype}")
    return iio.imwrite("<bytes>", image, extension=".png")


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """(n, H, W, 3) uint8 frames -> an endlessly looping GIF."""
    import imageio.v3 as iio

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"clip frames must be (n, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _format(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        if value != value:
            return "nan"
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)) and all(_number(v) for v in value):
        return "[" + ", ".join(_format(v, digits) for v in value) + "]"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


class Report:
    """An HTML report built block by block; ``write`` saves it atomically as one file."""

    def __init__(self, title: str, *, command: str | Sequence[str] | None = None,
                 versions: Mapping[str, str] | None = None, subtitle: str = ""):
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"Report title must be a non-empty string, got {title!r}")
        self.title = title
        self.subtitle = subtitle
        self.command = command if isinstance(command, str) else command_line(command)
        self.versions = dict(versions) if versions is not None else environment()
        self._blocks: list[str] = []

    # -- blocks ------------------------------------------------------------------------------------
    def add_heading(self, text: str) -> "Report":
        self._blocks.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def add_text(self, text: str, *, css_class: str = "") -> "Report":
        attribute = f" class='{html.escape(css_class)}'" if css_class else ""
        self._blocks.append(f"<p{attribute}>{html.escape(text)}</p>")
        return self

    def add_status(self, passed: bool, text: str) -> "Report":
        """A PASS/FAIL line (gate results, checks)."""
        word, css = ("PASS", "pass") if passed else ("FAIL", "fail")
        self._blocks.append(f"<p><span class='{css}'>{word}</span> {html.escape(text)}</p>")
        return self

    def add_table(self, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], *,
                  columns: Sequence[str] | None = None, caption: str = "", digits: int = 4) -> "Report":
        """rows: dicts (columns = the union of their keys, in first-seen order, unless given) or
        sequences with ``columns`` as the header. Numbers are right-aligned with ``digits`` digits."""
        rows = list(rows)
        if rows and isinstance(rows[0], Mapping):
            if columns is None:
                seen: dict[str, None] = {}
                for row in rows:
                    seen.update(dict.fromkeys(row))
                columns = list(seen)
            body = [[row.get(c) for c in columns] for row in rows]
        else:
            body = [list(r) for r in rows]
            if columns is None:
                raise ValueError("add_table: pass columns=[...] when rows are sequences, not dicts")
            bad = [i for i, r in enumerate(body) if len(r) != len(columns)]
            if bad:
                raise ValueError(f"add_table: row {bad[0]} has {len(body[bad[0]])} cells, the header has "
                                 f"{len(columns)}")
        parts = ["<table>"]
        if caption:
            parts.append(f"<caption>{html.escape(caption)}</caption>")
        parts.append("<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr>")
        for row in body:
            cells = []
            for value in row:
                css = " class='num'" if _number(value) else ""
                cells.append(f"<td{css}>{html.escape(_format(value, digits))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        self._blocks.append("".join(parts))
        return self

    def add_image(self, image: np.ndarray | bytes | str | Path, *, caption: str = "", width: int | None = None,
                  mime: str = "image/png") -> "Report":
        """An (H, W[, 3]) uint8 array, encoded image bytes (``mime``), or an image file path."""
        if isinstance(image, (str, Path)):
            payload, mime = self._read(Path(image), ("image/",))
        elif isinstance(image, (bytes, bytearray)):
            payload = bytes(image)
        else:
            payload, mime = png_bytes(image), "image/png"
        size = f" width='{int(width)}'" if width else ""
        self._figure(f"<img alt='{html.escape(caption or 'image')}'{size} src='{data_uri(payload, mime)}'>", caption)
        return self

    def add_plot(self, figure, *, caption: str = "", dpi: int = 100, close: bool = True) -> "Report":
        """A matplotlib Figure, saved as PNG (and closed unless ``close=False``)."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)
        return self.add_image(buffer.getvalue(), caption=caption)

    def add_clip(self, clip: np.ndarray | str | Path, *, fps: float = 10.0, caption: str = "",
                 width: int | None = None) -> "Report":
        """(n, H, W, 3) uint8 frames (embedded as a looping GIF), or a .mp4/.webm/.gif file."""
        size = f" width='{int(width)}'" if width else ""
        label = html.escape(caption or "clip")
        if isinstance(clip, (str, Path)):
            payload, mime = self._read(Path(clip), ("video/", "image/gif"))
            if mime.startswith("video/"):
                self._figure(f"<video controls loop muted autoplay playsinline{size} aria-label='{label}' "
                             f"src='{data_uri(payload, mime)}'></video>", caption)
                return self
        else:
            payload, mime = gif_bytes(clip, fps), "image/gif"
        self._figure(f"<img alt='{label}'{size} src='{data_uri(payload, mime)}'>", caption)
        return self

    def add_json(self, payload: Any, *, caption: str = "") -> "Report":
        text = json.dumps(payload, indent=1, default=str, allow_nan=True)
        self._blocks.append((f"<h3>{html.escape(caption)}</h3>" if caption else "") + f"<pre>{html.escape(text)}</pre>")
        return self

    def add_link(self, href: str, text: str) -> "Report":
        """A link to a file next to the report (relative path only: the report stays self-contained
        apart from the sibling reports an index points to)."""
        if "://" in href or href.startswith(("/", "//")) or ".." in Path(href).parts:
            raise ValueError(f"add_link: href must be a relative path inside the output folder, got {href!r}")
        self._blocks.append(f"<p><a href='{html.escape(href)}'>{html.escape(text)}</a></p>")
        return self

    # -- output ------------------------------------------------------------------------------------
    def html(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}"
                f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>")
        if self.subtitle:
            head += f"<p class='meta'>{html.escape(self.subtitle)}</p>"
        foot = ("<h2>Provenance</h2><p class='meta'>command</p>"
                f"<pre id='command'>{html.escape(self.command)}</pre>"
                f"<p class='meta' id='versions'>{html.escape(versions)}</p></body></html>")
        return head + "\n".join(self._blocks) + foot

    def write(self, path: str | Path) -> Path:
        """Write the report (temporary file + rename: never a half-written page)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_text(self.html(), encoding="utf-8")
        temporary.replace(path)
        return path

    # -- helpers -------------------------------------------------------------------------------------
    def _figure(self, element: str, caption: str) -> None:
        text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure>{element}{text}</figure>")

    @staticmethod
    def _read(path: Path, allowed: Iterable[str]) -> tuple[bytes, str]:
        mime = _MIME.get(path.suffix.lower())
        if mime is None or not any(mime.startswith(a) for a in allowed):
            raise ValueError(f"{path}: unsupported file type {path.suffix!r} here; expected one of "
                             f"{sorted(s for s, m in _MIME.items() if any(m.startswith(a) for a in allowed))}")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file to embed in the report")
        return path.read_bytes(), mime
