"""An HTTP API around a trained model (FastAPI + uvicorn): ``POST /predict``, ``GET /health``.

Every bad request gets a 4xx JSON body ``{"error": "<one line>"}``; nothing a client
sends can stop the server.
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
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sftlab.inference.predictor import (
    Predictor,
    check_task,
    class_probabilities,
    load_predictor,
    predict_frame,
    require,
)
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_texts(body: bytes, max_texts: int) -> list[str]:
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
        raise BadRequest(
            413, f"{len(texts)} texts in one request; the limit is {max_texts} (serve.max_texts)"
        )
    return texts


def create_app(predictor: Predictor, batch_size: int = 64, max_texts: int = 256) -> FastAPI:
    """The app for one loaded model; requests' texts run in batches of ``batch_size``.
    Classification answers ``label`` and ``probabilities``; the other tasks answer predict.py's
    columns: ``pred_value`` (regression), ``pred_labels`` and ``prob_<label>`` (multi-label),
    ``generated`` (generation)."""
    check_task(predictor)
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
        return JSONResponse({"error": exc.message}, status_code=exc.status)

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
        }

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        texts = parse_texts(await request.body(), max_texts)
        return {"predictions": await run_in_threadpool(answer, texts)}

    return app


def serve(cfg: Any) -> None:
    """Load the model, then serve it until interrupted."""
    import uvicorn

    require(cfg, ("run",), "python serve.py run=<run dir or model folder> port=8000")
    port = int(cfg.port)
    if not 0 <= port <= 65535:
        raise SftlabError(f"port={port} is not a TCP port (0-65535)")
    check_port(str(cfg.host), port)
    predictor = load_predictor(cfg.run, device=str(cfg.get("device", "auto")))
    app = create_app(predictor, batch_size=int(cfg.batch_size), max_texts=int(cfg.max_texts))
    log.info("serving %s on http://%s:%d (POST /predict, GET /health)", cfg.run, cfg.host, port)
    uvicorn.run(app, host=str(cfg.host), port=port, log_level=str(cfg.get("log_level", "info")))


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
