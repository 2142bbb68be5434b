"""The viewer's HTTP server: the standard library's ThreadingHTTPServer on 127.0.0.1, one static
page (vanilla JS, no build step) and a small JSON API over a dataset, asset or run folder.

    GET /                         the page (it asks /api/summary what it is showing)
    GET /api/summary              kind (dataset|asset|run), name, facets / gate / files
    GET /api/questions?family=&type=&split=&offset=&limit=     a page of questions (dataset)
    GET /api/scene?id=            objects, latent properties, events (dataset)
    GET /media/frame?id=&i=&column=   one PNG frame; /media/clip?id=  the clip as GIF (dataset)
    GET /media/turntable.gif, /media/sweep.gif                 (asset)
    GET /files/PATH               a file inside the folder (reports and what they link to)
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
import webbrowser
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from physforge.outputs import finite_or_null
from physforge.viewer.sources import AssetSource, DatasetSource, ViewerError, open_folder

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ViewConfig:
    """folder: what to show. port: TCP port on 127.0.0.1 (0: any free port). open_browser: open
    the page in the default browser once the server listens."""

    folder: str
    port: int = 8765
    open_browser: bool = True

    def __post_init__(self):
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"ViewConfig.port must be an integer in [0, 65535] (0: any free port), got {self.port!r}")


def _page() -> bytes:
    return resources.files("physforge.viewer").joinpath("static/index.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    source: Any  # set on the subclass made per server
    server_version = "physforge-viewer"

    def log_message(self, format, *args):  # the default writes every request to stderr
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._route(url.path, query)
        except ViewerError as error:
            self._send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # keep serving; the page shows the message
            log.exception("viewer request %s failed", self.path)
            self._send_json({"error": f"{type(error).__name__}: {error}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def _route(self, path: str, query: dict[str, str]) -> None:
        source = self.source
        if path in ("/", "/index.html"):
            return self._send(_page(), "text/html; charset=utf-8")
        if path == "/api/summary":
            return self._send_json(source.summary())
        if path.startswith("/files/"):
            return self._send_file(unquote(path[len("/files/"):]))
        if isinstance(source, DatasetSource):
            if path == "/api/questions":
                return self._send_json(source.questions(
                    family=query.get("family", ""), question_type=query.get("type", ""), split=query.get("split", ""),
                    offset=_int(query, "offset", 0), limit=_int(query, "limit", 20)))
            if path == "/api/scene":
                return self._send_json(source.scene(query.get("id", "")))
            if path == "/media/frame":
                return self._send(source.frame(query.get("id", ""), _int(query, "i", 0),
                                               query.get("column", "frames")), "image/png")
            if path == "/media/clip":
                return self._send(source.clip(query.get("id", "")), "image/gif")
        if isinstance(source, AssetSource) and path.startswith("/media/"):
            name = path[len("/media/"):]
            if name in source.media:
                return self._send(source.media[name], "image/gif")
        self._send_json({"error": f"no such page {path!r}"}, HTTPStatus.NOT_FOUND)

    def _send_file(self, relative: str) -> None:
        root = self.source.folder
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise ViewerError(f"no file {relative!r} inside the viewed folder")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(target.read_bytes(), kind)

    def _send_json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(finite_or_null(payload), default=_jsonable, allow_nan=False).encode()
        self._send(body, "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def _int(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        raise ViewerError(f"query argument {name} must be an integer, got {query[name]!r}") from None


def _jsonable(value: Any):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return None
    return str(value)


def make_server(folder: str | Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``folder`` bound to 127.0.0.1:``port`` (0: a free port; see ``server_address``).
    The folder is opened (and an asset's previews rendered) here, before any request."""
    source = open_folder(folder)
    handler = type("Handler", (_Handler,), {"source": source})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    server.source = source  # type: ignore[attr-defined]
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve(config: ViewConfig, *, on_ready=None) -> None:
    """Serve until interrupted (Ctrl-C); ``on_ready(url)`` is called once the server listens."""
    server = make_server(config.folder, config.port)
    url = url_of(server)
    if on_ready is not None:
        on_ready(url)
    if config.open_browser:
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
