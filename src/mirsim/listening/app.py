"""The web app of a listening test (``mirsim listen serve``).

=======================================  ======================================================
``GET /``                                what this server is (open your personal link)
``GET /t/{token}``                       the listener's page (instructions, then the trials)
``GET /api/t/{token}/session``           kind, progress and the next trial (or ``null``)
``POST /api/t/{token}/answers``          one answer ``{"trial": i, "answer": {...}}``,
                                         committed before the reply
``GET /api/t/{token}/audio/{item}``      the sound of item ``item`` of ``test.json``
=======================================  ======================================================

Every API request carries the listener's token (an unknown one is refused with 403, and so is
a second answer to a trial: a replayed request); sounds are named by their position in
``test.json``, never by a path. The protections of :mod:`mirsim.server.security` apply: the
``Host`` check (DNS rebinding), same-origin writes, the request-target limit, security headers;
a POST body over :data:`MAX_BODY_BYTES` is refused (413) before it is read.

Progress lives in the database, so a listener who closes the page and opens the link again
(or a restarted server) carries on where they stopped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from mirsim.listening.design import ListeningTest, load_test
from mirsim.listening.export import MAX_CONFIDENCE
from mirsim.listening.store import ANSWERS_FILE, AlreadyAnswered, AnswerStore, StoreError
from mirsim.server.app import _MULTIPART_SLACK, LOOPBACK_HOSTS, UploadLimit
from mirsim.server.files import content_type
from mirsim.server.security import (RequestTargetLimit, SameOriginWrites, SecurityHeaders,
                                    security_headers, validation_errors)

__all__ = ["MAX_BODY_BYTES", "create_listen_app", "issue_links"]

#: Largest answer body accepted (a free sorting of 10,000 sounds with positions fits).
MAX_BODY_BYTES = 1_000_000
STATIC_DIR = Path(__file__).with_name("static")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")

INSTRUCTIONS = {
    "triplets": "Listen to A, then to B and C. Which of B and C sounds more like A? Then say "
                "how sure you are.",
    "pairwise": "Listen to both sounds, then move the slider: how similar do they sound?",
    "free-sorting": "Click a sound to hear it. Drag sounds that sound alike close together "
                    "into groups: as many groups as you hear. Submit when every sound is in a "
                    "group.",
}


class Answer(BaseModel):
    """One answer: the trial and what the listener said."""

    trial: int = Field(ge=0)
    answer: dict[str, Any]


def issue_links(test_dir: str | Path) -> dict[str, str]:
    """A new token per listener of the test (the previous ones stop working).

    Examples
    --------
    >>> import tempfile
    >>> from mirsim.listening.design import design_test, write_test
    >>> d = write_test(design_test("pairwise", list("abc"), list("abc"), listeners=["x", "y"]),
    ...                Path(tempfile.mkdtemp()) / "t")
    >>> sorted(issue_links(d))
    ['x', 'y']
    """
    with AnswerStore(Path(test_dir) / ANSWERS_FILE) as store:
        return {name: store.issue_token(name) for name in store.listeners()}


def create_listen_app(test_dir: str | Path, *,
                      allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The web app of the listening test in ``test_dir``.

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from mirsim.listening.design import design_test, write_test
    >>> d = write_test(design_test("triplets", list("abcd"), list("abcd"), n=2,
    ...                            listeners=["x"]), Path(tempfile.mkdtemp()) / "t")
    >>> token = issue_links(d)["x"]
    >>> client = TestClient(create_listen_app(d), base_url="http://127.0.0.1")
    >>> s = client.get(f"/api/t/{token}/session").json()
    >>> s["n_trials"], s["done"], sorted(s["next"]["trial"])
    (2, 0, ['a', 'b', 'c'])
    >>> client.post(f"/api/t/{token}/answers", json={"trial": s["next"]["id"], "answer": {
    ...     "choice": "b", "confidence": 2}}).json()["done"]
    1
    >>> client.get("/api/t/forged-token-0000000/session").status_code
    403
    """
    test_dir = Path(test_dir)
    test = load_test(test_dir)
    AnswerStore(test_dir / ANSWERS_FILE).close()  # a readable database, or a one-line error
    app = FastAPI(title="mirsim listening test", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.test, app.state.db = test, test_dir / ANSWERS_FILE
    _add_routes(app, test, test_dir / ANSWERS_FILE)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(UploadLimit, max_body=MAX_BODY_BYTES + _MULTIPART_SLACK, paths=(),
                       prefixes=("/api/",))
    app.add_middleware(SameOriginWrites)
    app.add_middleware(RequestTargetLimit)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS))
    app.add_middleware(SecurityHeaders, headers=security_headers())

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    return app


Token = Annotated[str, PathParam(max_length=64)]


def _listener(store: AnswerStore, token: str) -> str:
    listener = store.listener_of(token) if _TOKEN.fullmatch(token) else None
    if listener is None:
        raise HTTPException(403, "unknown or expired listener link")
    return listener


def _add_routes(app: FastAPI, test: ListeningTest, db: Path) -> None:
    @app.get("/", include_in_schema=False)
    def home() -> JSONResponse:
        return JSONResponse({"detail": "a mirsim listening test: open your personal link "
                                       "(/t/...)"})

    @app.get("/t/{token}", include_in_schema=False)
    def page(token: Token) -> FileResponse:
        with AnswerStore(db) as store:
            _listener(store, token)
        return FileResponse(STATIC_DIR / "listen.html", media_type="text/html")

    @app.get("/api/t/{token}/session")
    def session(token: Token) -> dict[str, Any]:
        with AnswerStore(db) as store:
            listener = _listener(store, token)
            return _session(test, listener, store.answered(listener))

    @app.post("/api/t/{token}/answers")
    def answer(token: Token, body: Answer) -> dict[str, Any]:
        if body.trial >= len(test.trials):
            raise HTTPException(404, f"no trial {body.trial}")
        clean = _checked_answer(test, body.trial, body.answer)
        with AnswerStore(db) as store:
            listener = _listener(store, token)
            try:
                store.add_answer(listener, body.trial, clean)
            except AlreadyAnswered:
                raise HTTPException(403, "this trial is already answered") from None
            except StoreError as exc:
                raise HTTPException(400, str(exc)) from None
            return _session(test, listener, store.answered(listener))

    @app.get("/api/t/{token}/audio/{item}")
    def audio(token: Token, item: Annotated[int, PathParam(ge=0)]) -> FileResponse:
        with AnswerStore(db) as store:
            _listener(store, token)
        if item >= len(test.items):
            raise HTTPException(404, f"no item {item}")
        path = Path(test.items[item]["path"])
        if not path.is_file():
            raise HTTPException(404, f"item {item}: its file is missing")
        return FileResponse(path, media_type=content_type(path),
                            content_disposition_type="inline", filename=path.name)


def _session(test: ListeningTest, listener: str, answered: list[int]) -> dict[str, Any]:
    done = set(answered)
    pending = [int(i) for i in test.order(listener) if int(i) not in done]
    nxt = None
    if pending:
        nxt = {"id": pending[0], "trial": _public_trial(test.trials[pending[0]])}
    return {"listener": listener, "kind": test.kind, "instructions": test.extra.get("instructions", INSTRUCTIONS[test.kind]),
            "n_trials": len(test.trials), "done": len(done), "next": nxt,
            "max_confidence": MAX_CONFIDENCE}


def _public_trial(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial as the page sees it: item positions only (no model margin)."""
    return {k: v for k, v in trial.items() if k in ("a", "b", "c", "items")}


def _checked_answer(test: ListeningTest, trial: int, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer in its stored form, or 422 saying what is wrong."""
    spec = test.trials[trial]

    def bad(message: str) -> HTTPException:
        return HTTPException(422, f"bad answer: {message}")

    if test.kind == "triplets":
        choice, confidence = answer.get("choice"), answer.get("confidence")
        if choice not in ("b", "c"):
            raise bad("choice is 'b' or 'c'")
        if not isinstance(confidence, int) or not 1 <= confidence <= MAX_CONFIDENCE:
            raise bad(f"confidence is a whole number from 1 to {MAX_CONFIDENCE}")
        return {"choice": choice, "confidence": confidence}
    if test.kind == "pairwise":
        value = answer.get("similarity")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise bad("similarity is a number from 0 to 1")
        return {"similarity": float(value)}
    groups = answer.get("groups")
    if not isinstance(groups, list) or not all(
            isinstance(g, list) and g and all(isinstance(i, int) for i in g) for g in groups):
        raise bad("groups is a list of non-empty lists of item ids")
    flat = [i for g in groups for i in g]
    if sorted(flat) != sorted(spec["items"]):
        raise bad("every sound of the trial is in exactly one group")
    return {"groups": groups}
