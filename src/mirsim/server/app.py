"""The web app: a JSON API over one sound index, and the page that draws its map.

Endpoints (all documented in ``/docs`` and ``/openapi.json``):

=================================  ===========================================================
``GET /``                          the page (map, play, neighbours, query by example, search)
``GET /api/info``                  the index's description and the server's settings
``GET /api/map``                   2-D coordinates, label and id of every sound (of one
                                   aspect's sub-space with ``?aspect=NAME``)
``GET /api/items/{i}``             one sound's manifest record
``GET /api/items/{i}/neighbors``   its ``k`` nearest sounds, with distances
``GET /api/items/{i}/aspect-...``  ``aspect-neighbors?weights=tempo=1,key=0.5``: its nearest
                                   sounds by a weighted mix of the index's aspects
``GET /api/items/{i}/audio``       its file (Range requests supported)
``GET /api/items/{i}/stem?aspect=``  one instrument of a song of a per-instrument index: the
                                   original stem (Slakh layout) or the separated one
``GET /api/search?q=``             sounds whose file path contains ``q``
``POST /api/query``                upload a sound file: its nearest indexed sounds
=================================  ===========================================================

A sound is always named by its manifest row ``i`` (digits only: ``1.0`` is refused); no
endpoint takes a path. Uploads larger than the limit are refused with 413 (before their body is
read when the request announces its length, which browsers do; a request that does not is
refused with 411). Requests whose ``Host`` is not an allowed name are refused with 400, so that
a web page of another site cannot reach the server through DNS rebinding; uploads sent by a
page of another site (``Origin``), with 403; a path and query string over 8 KB, with 414 (see
:mod:`mirsim.server.security`, which also sets the Content-Security-Policy and frame
protection). Error bodies never repeat what the request sent.

When a build replaces the index in place, the server switches to the new one at the next
request (:class:`~mirsim.server.state.LiveLibrary`). Every API response names the index
version it comes from in ``X-Mirsim-Index``; a request that sends back a version that is no
longer served (as the page does) is refused with 409, so that a page showing the old map is
told to reload instead of getting another sound under the same id.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BeforeValidator
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import mirsim
from mirsim.audio import AudioError
from mirsim.features.extraction import FeatureCache
from mirsim.index import SoundIndexError
from mirsim.index.aspects import AspectWeightsError
from mirsim.server import schemas
from mirsim.server.files import UploadTooLarge, content_type, saved_upload
from mirsim.server.maps import MapSettings
from mirsim.server.security import (RequestTargetLimit, SameOriginWrites, SecurityHeaders,
                                    inline_script_csp, security_headers, validation_errors)
from mirsim.server.state import MAX_K, LibraryService, LiveLibrary, UnknownItem

#: Default upload limit (20 MB).
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1000 * 1000
#: Host names the server answers by default (loopback only).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Response header naming the index version (see module); a request sending it back is
#: refused with 409 once that version is no longer served.
VERSION_HEADER = "X-Mirsim-Index"
_ROW = re.compile(r"-?[0-9]{1,18}")
#: Room for the multipart envelope around an uploaded file.
_MULTIPART_SLACK = 64 * 1024
STATIC_DIR = Path(__file__).with_name("static")

router = APIRouter()


def _service(request: Request,
             metric: Annotated[str | None, Query(max_length=200,
                                                 description="Which served metric answers "
                                                             "(`GET /api/metrics`; default: "
                                                             "the first).")] = None
             ) -> LibraryService:
    """The service of the index now served for ``metric`` (a rebuilt index is picked up
    here)."""
    libraries: dict[str, LiveLibrary] = request.app.state.libraries
    if metric is None:
        library = next(iter(libraries.values()))
    elif metric in libraries:
        library = libraries[metric]
    else:
        raise HTTPException(404, f"no such metric (served: {', '.join(libraries)})")
    service = library.current()
    request.state.index_version = service.version  # -> the X-Mirsim-Index response header
    expected = request.headers.get(VERSION_HEADER)
    if expected is not None and expected != service.version:
        raise HTTPException(409, "the index was rebuilt since this page was loaded: reload the "
                                 "page to see the new library")
    return service


def _plain_row(value: object) -> object:
    """Refuse what lax integer parsing would accept for a row: ``1.0``, ``+1``, ``1_0``..."""
    if isinstance(value, str) and not _ROW.fullmatch(value):
        raise ValueError("an item id is a manifest row: a whole number written in digits")
    return value


Service = Annotated[LibraryService, Depends(_service)]
ItemId = Annotated[int, BeforeValidator(_plain_row),
                   PathParam(description="Manifest row of the sound (0-based).")]
_ERRORS = {404: {"model": schemas.ErrorResponse, "description": "No such item (or its file "
                                                                 "is missing)."}}


def create_app(index_dir: str | Path, *, root: str | Path | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               map_settings: MapSettings | None = None, cache: FeatureCache | None = None,
               warm_map: bool = False, allowed_hosts: Sequence[str] | None = None,
               other_metrics: Sequence[str | Path] = ()) -> FastAPI:
    """The web app of the sound index in ``index_dir``.

    Parameters
    ----------
    index_dir : str or Path
        A sound index directory (``mirsim index build``).
    other_metrics : sequence of str or Path
        Other indexes of the same library (the same files in the same rows) built with other
        metrics — e.g. a group metric and a listener's personal one: every API call takes
        ``?metric=NAME`` (:func:`metric_names`; default: ``index_dir``'s), ``GET
        /api/metrics`` lists them, and the page switches between them.
    root : str or Path, optional
        Where the library files now live, if they moved since the build.
    max_upload_bytes : int
        Largest sound file accepted by ``POST /api/query``.
    map_settings : MapSettings, optional
        How the map is made (default: t-SNE, see :mod:`mirsim.server.maps`).
    cache : FeatureCache, optional
        Feature cache for uploaded sounds (default: the user cache).
    warm_map : bool
        Compute (or read) the map in a background thread as soon as the server starts,
        instead of at the first ``GET /api/map``.
    allowed_hosts : sequence of str, optional
        Host names the server answers (default: ``127.0.0.1``, ``localhost`` and ``[::1]``;
        ``"*"`` allows any, for tests and proxies that check it themselves).

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    SoundIndexError
        ``index_dir`` is not a readable sound index.

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from mirsim.server.synthetic import write_synthetic_index
    >>> d = write_synthetic_index(Path(tempfile.mkdtemp()) / "s.index", 40, n_labels=2)
    >>> client = TestClient(create_app(d, map_settings=MapSettings(method="pca")),
    ...                     base_url="http://127.0.0.1")
    >>> client.get("/api/info").json()["n_items"]
    40
    >>> client.get("/api/items/0/neighbors", params={"k": 3}).json()["neighbors"][0]["rank"]
    1
    >>> client.get("/api/items/40").status_code, client.get("/api/items/0/audio").status_code
    (404, 404)
    >>> client.get("/api/items/1.0").status_code, client.get("/").headers["X-Frame-Options"]
    (422, 'DENY')
    """
    def start_map(service: LibraryService) -> None:
        threading.Thread(target=service.map_json, name="mirsim-map", daemon=True).start()

    directories = [Path(index_dir), *map(Path, other_metrics)]
    libraries = {name: LiveLibrary.open(d, root, map_settings or MapSettings(),
                                        int(max_upload_bytes), cache,
                                        start_map if warm_map else None)
                 for name, d in zip(metric_names(directories), directories)}
    check_same_library({n: lib.current() for n, lib in libraries.items()})
    service = next(iter(libraries.values())).current()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm_map:
            for library in libraries.values():
                start_map(library.current())
        yield

    app = FastAPI(title="mirsim", version=mirsim.__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Browse, play and search a sound library indexed by mirsim. "
                              "Sounds are named by their manifest row (`id`).")
    app.state.libraries = libraries
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_offline_docs(app)
    # the last added runs first: headers on every answer, then Host, size, Origin, upload
    app.add_middleware(UploadLimit, max_body=service.max_upload_bytes + _MULTIPART_SLACK,
                       paths=("/api/query",))
    app.add_middleware(SameOriginWrites)
    app.add_middleware(RequestTargetLimit)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS))
    app.add_middleware(IndexVersionHeader)
    app.add_middleware(SecurityHeaders, headers=security_headers())
    _add_error_handlers(app)
    return app


def metric_names(directories: Sequence[str | Path]) -> list[str]:
    """The name of each index directory's metric in the web app: the directory's name
    without ``.index``, numbered where two are alike.

    Examples
    --------
    >>> metric_names(["lib/group.index", "lib/alice.index", "other/group.index"])
    ['group', 'alice', 'group-2']
    """
    names: list[str] = []
    for d in directories:
        base = Path(d).name.removesuffix(".index") or "index"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def check_same_library(services: dict[str, LibraryService]) -> None:
    """Refuse indexes of different libraries: a sound's id (its manifest row) must name the
    same file under every metric.

    Raises
    ------
    SoundIndexError
        Two indexes hold other files, or the same files in other rows.
    """
    first_name, first = next(iter(services.items()))
    paths = list(first.index.manifest["path"])
    for name, service in services.items():
        if list(service.index.manifest["path"]) != paths:
            raise SoundIndexError(f"the indexes '{first_name}' and '{name}' hold different "
                                  f"libraries ({len(first)} and {len(service)} sounds, or "
                                  f"other files or rows): metrics switched in one page must "
                                  f"index the same files")


def _add_offline_docs(app: FastAPI) -> None:
    """Serve the interactive API docs at ``/docs`` with Swagger UI's files from the
    ``swagger-ui-py`` package instead of a CDN, so that they work offline (Swagger UI 5, which
    reads the OpenAPI 3.1 documents FastAPI writes)."""
    import swagger_ui
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(swagger_ui.__file__).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="mirsim API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png")
        page.headers["Content-Security-Policy"] = inline_script_csp(bytes(page.body).decode())
        return page


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownItem)
    async def unknown_item(_: Request, exc: UnknownItem) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(UploadTooLarge)
    async def too_large(_: Request, exc: UploadTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)


class IndexVersionHeader:
    """ASGI middleware naming, in ``X-Mirsim-Index``, the index version a request was
    answered from (recorded by the ``Service`` dependency)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            version = scope.get("state", {}).get("index_version")
            if message["type"] == "http.response.start" and version:
                message.setdefault("headers", []).append(
                    (VERSION_HEADER.lower().encode(), version.encode()))
            await send(message)

        await self.app(scope, receive, send_with_version)


class UploadLimit:
    """ASGI middleware refusing a POST to ``paths`` (or to a path starting with one of
    ``prefixes``) whose body is announced larger than ``max_body`` bytes (413), or not
    announced at all (411), before reading it."""

    def __init__(self, app: ASGIApp, max_body: int, paths: Sequence[str],
                 prefixes: Sequence[str] = ()):
        self.app, self.max_body, self.paths = app, max_body, tuple(paths)
        self.prefixes = tuple(prefixes)

    def applies(self, path: str) -> bool:
        return path in self.paths or path.startswith(self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.applies(scope["path"]):
            refusal = self._refusal(dict(scope["headers"]).get(b"content-length"))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, length: bytes | None) -> JSONResponse | None:
        if length is None or not length.strip().isdigit():
            return JSONResponse({"detail": "upload refused: the request must state its length "
                                           "(Content-Length)"}, status_code=411)
        if int(length) > self.max_body:
            return JSONResponse({"detail": f"upload too large: the limit is "
                                           f"{self.max_body - _MULTIPART_SLACK:,} bytes"},
                                status_code=413)
        return None


# -- routes ----------------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/api/metrics", response_model=schemas.MetricsResponse)
def metrics(request: Request) -> dict:
    """The metrics served (one index each, of the same library); the first is the default."""
    rows = []
    for name, library in request.app.state.libraries.items():
        info = library.current().info()
        rows.append({"name": name, "feature": info["feature"], "model": info["model"],
                     "run_dir": info.get("run_dir"), "aspects": info["aspects"],
                     "instruments": info["instruments"]})
    return {"metrics": rows, "default": rows[0]["name"]}


@router.get("/api/info", response_model=schemas.InfoResponse)
def info(service: Service) -> dict:
    """The index (sounds, labels, feature, model, FAISS index) and the server's settings."""
    return service.info()


@router.get("/api/map", response_model=schemas.MapResponse,
            responses={200: {"description": "The map (gzip-compressed if the client accepts "
                                            "it)."}})
def library_map(request: Request, service: Service,
                aspect: Annotated[str | None, Query(max_length=200,
                                                    description="Map this aspect's sub-space "
                                                                "instead of the whole "
                                                                "embedding.")] = None
                ) -> Response:
    """2-D coordinates of every sound (t-SNE or PCA of the embeddings, or of one aspect's
    sub-space embeddings; computed once, then read from the index directory's cache)."""
    try:
        doc = service.map_json(aspect)
    except SoundIndexError as exc:
        raise HTTPException(400, str(exc)) from None
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        return Response(doc.gzipped, media_type="application/json",
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(doc.plain, media_type="application/json", headers={"Vary": "Accept-Encoding"})


@router.get("/api/items/{i}", response_model=schemas.Item, responses=_ERRORS)
def item(i: ItemId, service: Service) -> dict:
    """The manifest record of sound ``i``."""
    return service.item(i)


@router.get("/api/items/{i}/neighbors", response_model=schemas.NeighborsResponse,
            responses=_ERRORS)
def neighbors(i: ItemId, service: Service,
              k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of neighbours.")] = 10,
              exclude_same_group: Annotated[bool, Query(description="Also leave out the "
                                                                    "sounds of its group.")] = False
              ) -> dict:
    """The ``k`` sounds nearest to sound ``i`` (itself and copies of it left out)."""
    return service.neighbors(i, k, exclude_same_group)


@router.get("/api/items/{i}/aspect-neighbors", response_model=schemas.AspectNeighborsResponse,
            responses={**_ERRORS, 400: {"model": schemas.ErrorResponse,
                                        "description": "No aspects in the index, or bad "
                                                       "weights."}})
def aspect_neighbors(i: ItemId, service: Service,
                     weights: Annotated[str, Query(max_length=500,
                                                   description="NAME=WEIGHT,... (weights "
                                                               ">= 0, at least one above 0; "
                                                               "aspects not named weigh 0).")],
                     k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
                     exclude_same_group: Annotated[bool, Query()] = False) -> dict:
    """The ``k`` sounds nearest to sound ``i`` by the weighted sum of the cosine distances of
    its aspects (the sub-spaces of the index's conditional model), as ``mirsim query
    --aspects`` ranks them."""
    try:
        return service.aspect_neighbors(i, weights, k, exclude_same_group)
    except AspectWeightsError as exc:  # what is wrong, without repeating what was sent
        raise HTTPException(400, exc.public) from None
    except SoundIndexError as exc:
        raise HTTPException(400, str(exc)) from None


@router.head("/api/items/{i}/audio", include_in_schema=False)
@router.get("/api/items/{i}/audio", response_class=FileResponse,
            responses={**_ERRORS, 200: {"content": {"audio/*": {}},
                                        "description": "The sound file (also HEAD)."}})
def audio(i: ItemId, service: Service) -> FileResponse:
    """The file of sound ``i``, with the content type of its extension."""
    path = service.audio_file(i)
    return FileResponse(path, media_type=content_type(path), content_disposition_type="inline",
                        filename=path.name)


@router.head("/api/items/{i}/stem", include_in_schema=False)
@router.get("/api/items/{i}/stem", response_class=FileResponse,
            responses={**_ERRORS, 200: {"content": {"audio/*": {}},
                                        "description": "The instrument's stem (also HEAD)."},
                       400: {"description": "Not a per-instrument index, or an unknown "
                                            "instrument."}})
def stem(i: ItemId, service: Service,
         aspect: Annotated[str, Query(max_length=50, description="An instrument of the "
                                                                 "index (`mix` for the "
                                                                 "mix).")]) -> FileResponse:
    """One instrument of song ``i`` of a per-instrument index: the track's original stem for
    a Slakh-layout song, else the mix separated by the run's separator (computed on first
    request, then cached)."""
    try:
        path = service.stem_file(i, aspect)
    except SoundIndexError as exc:
        raise HTTPException(400, str(exc)) from None
    return FileResponse(path, media_type=content_type(path), content_disposition_type="inline",
                        filename=path.name)


@router.get("/api/search", response_model=schemas.SearchResponse)
def search(service: Service,
           q: Annotated[str, Query(max_length=500, description="Part of a file path "
                                                               "(case-insensitive).")],
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict:
    """Sounds whose path (relative to the library root) contains ``q``."""
    return service.search(q, limit)


@router.post("/api/query", response_model=schemas.QueryResponse,
             responses={400: {"model": schemas.ErrorResponse, "description": "Not usable audio."},
                        411: {"model": schemas.ErrorResponse, "description": "No length."},
                        413: {"model": schemas.ErrorResponse, "description": "Too large."}})
def query(service: Service,
          file: Annotated[UploadFile, File(description="A sound file (wav, flac, ogg, mp3, "
                                                       "aiff).")],
          k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
          exclude_same_group: Annotated[bool, Query()] = False) -> dict:
    """The indexed sounds nearest to an uploaded sound, embedded with the index's own
    pipeline (a sound the index holds uses its stored embedding and is left out)."""
    name = PurePosixPath((file.filename or "upload").replace("\\", "/")).name or "upload"
    with saved_upload(file.file, name, service.max_upload_bytes) as path:
        try:
            return service.query_file(path, name, k, exclude_same_group)
        except AudioError as exc:  # neither the file's name nor its temporary copy's path
            reason = exc.reason.replace(str(path), "").replace(str(path.parent), "")
            raise HTTPException(400, f"not a usable sound file: {reason}") from None
