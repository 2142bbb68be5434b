"""``physforge view DIR``: a local web viewer for datasets, assets and runs (stdlib HTTP server,
one static page of vanilla JS, a JSON API that reads datasets lazily)."""

from physforge.viewer.server import ViewConfig, make_server, serve, url_of
from physforge.viewer.sources import AssetSource, DatasetSource, RunSource, ViewerError, open_folder

__all__ = ["ViewConfig", "make_server", "serve", "url_of", "open_folder", "DatasetSource", "AssetSource",
           "RunSource", "ViewerError"]
