"""serve.py: real HTTP requests to a uvicorn server on 127.0.0.1 (a thread, a free port)."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time

import pytest
import uvicorn
from omegaconf import OmegaConf

from sftlab.deploy.predict import predict_stopped
from sftlab.deploy.serve import create_app, serve, serve_stopped
from sftlab.inference.predictor import class_probabilities, load_predictor
from sftlab.utils import signals
from sftlab.utils.cli import run_or_exit
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
    assert body["backend"] == "torch"


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


@pytest.fixture(scope="module")
def client(run):
    from fastapi.testclient import TestClient

    app = create_app(
        load_predictor(run, device="cpu"), batch_size=2, max_body_mb=0.001, max_text_chars=50
    )
    return TestClient(app)


def test_a_body_over_max_body_mb_gets_413_before_it_is_read(client):
    big = json.dumps({"texts": ["ok"] * 300}).encode()  # over 0.001 MB (1048 bytes)
    resp = client.post("/predict", content=big)
    assert resp.status_code == 413
    assert (
        resp.json()["setting"] == "serve.max_body_mb"
        and "the limit is 0.001" in resp.json()["error"]
    )

    def chunks():  # no Content-Length: refused while it streams in
        yield b'{"texts": ['
        for _ in range(300):
            yield b'"ok",'
        yield b'"ok"]}'

    resp = client.post("/predict", content=chunks())
    assert resp.status_code == 413 and resp.json()["limit"] == 0.001
    assert client.post("/predict", json={"texts": ["ok"]}).status_code == 200


def test_a_text_over_max_text_chars_gets_413(client):
    resp = client.post("/predict", json={"texts": ["ok", "x" * 51]})
    assert resp.status_code == 413
    assert resp.json() == {
        "error": '"texts"[1] has 51 characters; the limit is 50 (serve.max_text_chars=...)',
        "setting": "serve.max_text_chars",
        "limit": 50,
    }


def test_openapi_documents_the_predict_body(client):
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["texts"]["type"] == "array"
    assert body["schema"]["required"] == ["texts"]


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("max_texts", -1, "max_texts must be an integer >= 1, got -1"),
        ("max_body_mb", 0, "max_body_mb must be a number > 0, got 0"),
        ("max_text_chars", 0, "max_text_chars must be an integer >= 1 or null, got 0"),
        ("port", 70000, "port must be a TCP port (0-65535), got 70000"),
        ("batch_size", "many", "batch_size must be an integer >= 1, got 'many'"),
    ],
)
def test_serve_settings_are_checked_before_the_model_loads(tmp_path, key, bad, message):
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("serve", [f"run={tmp_path / 'absent'}"])
    cfg[key] = bad
    with pytest.raises(SftlabError) as e:
        serve(cfg)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("on_stop", "signum", "line"),
    [
        (
            serve_stopped,
            signal.SIGTERM,
            "serve.py stopped by SIGTERM: shut down cleanly (requests in flight were answered); "
            "start it again to serve",
        ),
        (
            predict_stopped,
            signal.SIGINT,
            "predict.py stopped by SIGINT: no output written; run it again",
        ),
    ],
)
def test_a_stopped_server_or_prediction_says_so_not_how_to_resume_training(
    monkeypatch, capsys, on_stop, signum, line
):
    """uvicorn hands SIGTERM / Ctrl-C back after its graceful shutdown: the line is serving's."""
    assert on_stop(signals.Interrupted(signum)) == line
    monkeypatch.setattr(signals, "install", lambda: None)  # keep pytest's own Ctrl-C

    def stopped(cfg):
        raise signals.Interrupted(signum)

    with pytest.raises(SystemExit) as e:
        run_or_exit(stopped, None, None, on_stop=on_stop)
    assert e.value.code == 128 + signum
    assert capsys.readouterr().err == line + "\n"
