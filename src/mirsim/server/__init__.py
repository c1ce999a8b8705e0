"""The local web app of a sound index: a JSON API and a page with the map of the library.

``mirsim serve INDEX`` runs it (see :mod:`mirsim.cli.serve`); :func:`create_app` builds the
FastAPI application for one index directory.

>>> from mirsim.server import MapSettings, create_app
>>> MapSettings().method
'tsne'

Modules: :mod:`~mirsim.server.app` (routes), :mod:`~mirsim.server.state` (what a running
server holds; switching to a rebuilt index), :mod:`~mirsim.server.security` (other sites'
requests, security headers, request size), :mod:`~mirsim.server.maps` (the 2-D map and its
cache),
:mod:`~mirsim.server.files` (which files may be sent; uploads), :mod:`~mirsim.server.schemas`
(JSON shapes), :mod:`~mirsim.server.synthetic` (an index without audio, for trying the page at
scale). The page itself is ``static/index.html``, ``app.js`` and ``style.css``.
"""

from __future__ import annotations

from mirsim.server.app import DEFAULT_MAX_UPLOAD_BYTES, create_app
from mirsim.server.maps import MapSettings

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "MapSettings", "create_app"]
