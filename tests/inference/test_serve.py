"""serve.py: real HTTP requests to a uvicorn server on 127.0.0.1 (a thread, a free port)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import uvicorn
from omegaconf import OmegaConf

from sftlab.inference.predictor import class_probabilities, load_predictor
from sftlab.inference.serve import create_app, serve
from sftlab.utils.errors import SftlabError
from tests.helpers.tiny_run import trained_run

MAX_TEXTS = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(run):
    """The app on a free port; stopped (bounded) when the module's tests end."""
    predictor = load_predictor(run, device="cpu")
    port = free_port()
    config = uvicorn.Config(
        create_app(predictor, batch_size=2, max_texts=MAX_TEXTS),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield predictor, port
    srv.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_health(server):
    predictor, port = server
    status, body = request(port, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok" and body["labels"] == ["negative", "neutral", "positive"]


def test_predict_returns_labels_and_probabilities_like_predict_py(server):
    predictor, port = server
    texts = [
        "great crew and a smooth landing",
        "they lost my bag",
        "",
        "the flight",
        "ok",
    ]  # 3 batches of 2
    status, body = request(port, "POST", "/predict", json.dumps({"texts": texts}).encode())
    assert status == 200
    preds = body["predictions"]
    want = class_probabilities(predictor, texts)
    assert len(preds) == len(texts)
    for pred, row in zip(preds, want, strict=True):
        assert list(pred["probabilities"]) == predictor.labels
        assert [pred["probabilities"][n] for n in predictor.labels] == pytest.approx(
            row.tolist(), abs=1e-6
        )
        assert pred["label"] == predictor.labels[int(row.argmax())]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"{}", 422, '"texts" list'),
        (b"[1, 2]", 422, '"texts" list'),
        (b'{"texts": "one string"}', 422, "must be a list of strings"),
        (b'{"texts": ["ok", 3]}', 422, '"texts"[1] is int'),
        (b'{"texts": [null]}', 422, '"texts"[0] is NoneType'),
        (b'{"texts": []}', 422, "is empty"),
        (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), 413, "the limit is 5"),
    ],
)
def test_malformed_requests_get_a_4xx_json_error(server, body, status, message):
    _, port = server
    got_status, got = request(port, "POST", "/predict", body)
    assert got_status == status and message in got["error"]
    assert request(port, "GET", "/health")[0] == 200  # still serving


def test_unknown_route_and_method_are_json_too(server):
    _, port = server
    assert request(port, "GET", "/nope") == (404, {"error": "Not Found"})
    assert request(port, "GET", "/predict") == (405, {"error": "Method Not Allowed"})


def test_serve_fails_in_one_line_on_a_taken_port(run):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cfg = OmegaConf.create(
            {"run": str(run), "host": "127.0.0.1", "port": port, "batch_size": 8, "max_texts": 8}
        )
        with pytest.raises(SftlabError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(cfg)


def test_serve_cli_bad_run_dir_exits_2_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "serve.py"), f"run={tmp_path / 'nope'}", "port=0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: run={tmp_path / 'nope'} not found: pass a run dir (outputs/<date>/<time>) or a model folder"
    )
    assert list(tmp_path.iterdir()) == []  # no Hydra dir, no log file
