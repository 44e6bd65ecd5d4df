"""An HTTP API around a trained model (FastAPI + uvicorn): ``POST /predict``, ``GET /health``.

Every bad request gets a 4xx JSON body ``{"error": "<one line>"}``; nothing a client
sends can stop the server, nor make it read or tokenize without bound: a body over
``max_body_mb`` or a text over ``max_text_chars`` gets 413 (naming the limit and the setting),
and each text is cut to the run's ``data.max_chars`` as in training.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from omegaconf import OmegaConf
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sftlab.config.ranges import SERVE_RANGES, check_ranges
from sftlab.deploy.loading import load
from sftlab.inference.frames import check_task, predict_frame
from sftlab.inference.predictor import Predictor, class_probabilities, require
from sftlab.utils.cli import stopped_line
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

# uvicorn answers the requests in flight on SIGTERM / Ctrl-C, then hands the signal back
serve_stopped = stopped_line(
    "serve.py", "shut down cleanly (requests in flight were answered); start it again to serve"
)


MAX_BODY_MB = 4.0  # conf/serve.yaml's defaults, for create_app called directly
MAX_TEXT_CHARS = 100_000


class PredictRequest(BaseModel):
    """The body of ``POST /predict`` (documented in /openapi.json; parsed by ``parse_texts``,
    whose one-line errors say what is wrong)."""

    texts: list[str] = Field(
        min_length=1,
        description="the texts to predict (at most serve.max_texts, each at most "
        "serve.max_text_chars characters)",
        examples=[["great crew and a smooth landing", "they lost my bag"]],
    )


class BadRequest(Exception):
    def __init__(self, status: int, message: str, **detail: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        """For a limit: ``setting`` (the serve.yaml key) and ``limit`` (its value)."""


def too_large(what: str, limit: float, setting: str) -> BadRequest:
    return BadRequest(
        413,
        f"{what}; the limit is {limit} (serve.{setting}=...)",
        setting=f"serve.{setting}",
        limit=limit,
    )


async def read_body(request: Request, max_bytes: int, max_body_mb: float) -> bytes:
    """The request body, refused (413) as soon as it passes ``max_bytes``: a declared
    Content-Length before reading anything, a chunked body while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(f"the body has {int(declared)} bytes", max_body_mb, "max_body_mb")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(f"the body has over {max_bytes} bytes", max_body_mb, "max_body_mb")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_texts(body: bytes, max_texts: int, max_text_chars: int = MAX_TEXT_CHARS) -> list[str]:
    """The ``texts`` of a request body, or ``BadRequest`` saying what is wrong with it."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(
            400, f'the body is not valid JSON ({e}): send {{"texts": ["..."]}}'
        ) from None
    if not isinstance(payload, dict) or "texts" not in payload:
        raise BadRequest(
            422, 'the body must be a JSON object with a "texts" list: {"texts": ["..."]}'
        )
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f'"texts" must be a list of strings, got {type(texts).__name__}')
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise BadRequest(422, f'"texts"[{bad}] is {type(texts[bad]).__name__}, not a string')
    if not texts:
        raise BadRequest(422, '"texts" is empty: send at least one text')
    if len(texts) > max_texts:
        raise too_large(f"{len(texts)} texts in one request", max_texts, "max_texts")
    long = next((i for i, t in enumerate(texts) if len(t) > max_text_chars), None)
    if long is not None:
        raise too_large(
            f'"texts"[{long}] has {len(texts[long])} characters', max_text_chars, "max_text_chars"
        )
    return texts


def create_app(
    predictor: Predictor,
    batch_size: int = 64,
    max_texts: int = 256,
    max_body_mb: float = MAX_BODY_MB,
    max_text_chars: int | None = None,
) -> FastAPI:
    """The app for one loaded model; requests' texts run in batches of ``batch_size``.
    A request may hold ``max_texts`` texts of ``max_text_chars`` characters (None:
    ``MAX_TEXT_CHARS``) in a body of ``max_body_mb`` MB.
    Classification answers ``label`` and ``probabilities``; the other tasks answer predict.py's
    columns: ``pred_value`` (regression), ``pred_labels`` and ``prob_<label>`` (multi-label),
    ``generated`` (generation)."""
    check_task(predictor)
    check_ranges(
        {"batch_size": batch_size, "max_texts": max_texts, "max_body_mb": max_body_mb},
        SERVE_RANGES,
    )
    text_chars = max_text_chars or MAX_TEXT_CHARS
    max_bytes = int(max_body_mb * 1024 * 1024)
    app = FastAPI(title="sftlab", description=f"{predictor.task} with {predictor.source}")
    lock = threading.Lock()  # one forward pass at a time: CPU threads are shared anyway

    def classify(texts: list[str]) -> list[dict[str, Any]]:
        with lock:
            probs = class_probabilities(predictor, texts, batch_size)
        return [
            {
                "label": predictor.labels[int(row.argmax())],
                "probabilities": {
                    name: float(p) for name, p in zip(predictor.labels, row, strict=True)
                },
            }
            for row in probs
        ]

    def answer(texts: list[str]) -> list[dict[str, Any]]:
        if predictor.task == "classification":
            return classify(texts)
        with lock:
            frame = predict_frame(predictor, texts, batch_size)
        return json.loads(frame.to_json(orient="records"))  # plain JSON types

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message, **exc.detail}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": str(exc.errors()[:1])}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error while serving %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "task": predictor.task,
            "labels": predictor.labels,
            "model": str(predictor.source),
            "backend": getattr(predictor.backend, "name", "torch"),
        }

    schema = PredictRequest.model_json_schema()
    body_doc = {"required": True, "content": {"application/json": {"schema": schema}}}

    @app.post("/predict", openapi_extra={"requestBody": body_doc})
    async def predict(request: Request) -> dict[str, Any]:
        body = await read_body(request, max_bytes, max_body_mb)
        texts = parse_texts(body, max_texts, text_chars)
        return {"predictions": await run_in_threadpool(answer, texts)}

    return app


def serve(cfg: Any) -> None:
    """Load the model, then serve it until interrupted."""
    import uvicorn

    check_settings(cfg)
    require(cfg, ("run",), "python serve.py run=<run dir or model folder> port=8000")
    port = int(cfg.port)
    check_port(str(cfg.host), port)
    predictor = load(cfg)
    app = create_app(
        predictor,
        batch_size=int(cfg.batch_size),
        max_texts=int(cfg.max_texts),
        max_body_mb=float(cfg.get("max_body_mb", MAX_BODY_MB)),
        max_text_chars=cfg.get("max_text_chars", MAX_TEXT_CHARS),
    )
    log.info("serving %s on http://%s:%d (POST /predict, GET /health)", cfg.run, cfg.host, port)
    uvicorn.run(app, host=str(cfg.host), port=port, log_level=str(cfg.get("log_level", "info")))


def check_settings(cfg: Any) -> None:
    """serve.yaml's numbers in range (the config check's table), before the model loads."""
    values = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    check_ranges({k: v for k, v in values.items() if k in SERVE_RANGES}, SERVE_RANGES)


def check_port(host: str, port: int) -> None:
    """Fail in one line, before loading the model, when the port is taken or the host is not ours."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise SftlabError(
                f"cannot listen on {host}:{port}: {e.strerror or e} (pick another port=)"
            ) from None
