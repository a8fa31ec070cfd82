"""Bundled models that the plugin package lists but does not hold: fetched on first use from the
manifest's URL (here an HTTP server on 127.0.0.1), checked against their SHA-256, found afterwards."""
import functools
import hashlib
import http.server
import json
import threading

import pytest

from landcover_plugin.errors import ModelError
from landcover_plugin.model import registry, remote
from tests.fixtures import make_model


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "release"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/models/"
    httpd.shutdown()


@pytest.fixture
def listed(tmp_path, server, monkeypatch):
    """A package whose manifest lists 'extra' (served by the server) and a cache folder of its own."""
    served, url = server
    (served / "models").mkdir()
    model = make_model(served / "models" / "extra.onnx")
    manifest = tmp_path / "remote.json"
    remote.write_manifest([model], url, manifest)
    monkeypatch.setattr(remote, "MANIFEST", manifest)
    monkeypatch.delenv(remote.ENV_URL, raising=False)
    remote.set_cache_dir(tmp_path / "cache")
    yield model, manifest
    remote.set_cache_dir(None)


def test_manifest_lists_name_size_sha256_and_url(listed):
    model, _ = listed
    entry = remote.remote_models()["extra"]
    assert entry.size == model.stat().st_size and entry.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert entry.url.startswith("http://127.0.0.1:") and entry.url.endswith("/models/extra.onnx")


def test_a_listed_model_is_fetched_on_first_use_then_found(listed, server, tmp_path):
    model, _ = listed
    assert "extra" not in registry.bundled_models()
    messages, fractions = [], []
    path = remote.fetch(remote.remote_models()["extra"], fractions.append, messages.append)
    assert path.read_bytes() == model.read_bytes() and path.is_relative_to(tmp_path / "cache")
    assert fractions[-1] == 1.0 and messages[0].startswith("Downloading model extra") and "verified" in messages[-1]
    assert registry.bundled_models()["extra"] == path
    served, _ = server
    (served / "models" / "extra.onnx").unlink()  # the server no longer has it: the cached file is used
    assert registry.resolve_model("extra") == path


def test_resolve_model_fetches_a_listed_name(listed):
    assert registry.resolve_model("extra").name == "extra.onnx"


def test_a_file_with_another_sha256_is_refused_and_not_kept(listed, server, tmp_path):
    served, _ = server
    make_model(served / "models" / "extra.onnx", classes=2)  # the server now has other bytes (same name)
    with pytest.raises(ModelError, match="does not have the expected SHA-256"):
        registry.resolve_model("extra")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert "extra" not in registry.bundled_models()


def test_the_url_can_be_replaced_at_run_time_and_errors_are_one_line(listed, monkeypatch, tmp_path):
    _, manifest = listed
    monkeypatch.setenv(remote.ENV_URL, "http://127.0.0.1:9/elsewhere")
    entry = remote.remote_models()["extra"]
    assert entry.url == "http://127.0.0.1:9/elsewhere/extra.onnx"
    with pytest.raises(ModelError, match="could not be downloaded from http://127.0.0.1:9/elsewhere/extra.onnx"):
        remote.fetch(entry)
    monkeypatch.delenv(remote.ENV_URL)
    data = json.loads(manifest.read_text())
    data["base_url"] = ""
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="no download URL is configured"):
        registry.resolve_model("extra")


def test_a_checkout_lists_nothing_remote():
    assert remote.remote_models() == {}  # every model is in models/
