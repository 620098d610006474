"""The page's server opens its index and loads its model as it starts (session 39): the page then
uses that very index and model (loaded once), a bad index's error still shows on the page, and the
process stops on Ctrl+C."""
from __future__ import annotations

import shutil
import signal
import subprocess

import pytest
import streamlit as st

from tests.ui_library import UiLibrary, page_on
from ui.components import server
from ui.components.screenshot import free_port


@pytest.fixture
def counted(monkeypatch) -> dict[str, list]:
    """Every index the page's server or page opened, and every model loaded, from now on (the
    page's cached loader emptied: other tests opened the shared library)."""
    import engine.models
    seen: dict[str, list] = {"indexes": [], "models": []}
    real_open, real_load = server.open_index, engine.models.load_model

    def open_index(index_dir, model):
        seen["indexes"].append(real_open(index_dir, model))
        return seen["indexes"][-1]

    def load_model(*a, **k):
        seen["models"].append(real_load(*a, **k))
        return seen["models"][-1]

    monkeypatch.setattr(server, "open_index", open_index)
    monkeypatch.setattr(engine.models, "load_model", load_model)
    st.cache_resource.clear()
    yield seen
    server._warming.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize("given_model", [False, True], ids=["index's model", "--model"])
def test_the_page_searches_with_the_index_and_model_its_server_loaded(ui_library: UiLibrary, tiny_clap_dir,  # noqa: F811
                                                                      monkeypatch, counted, given_model):
    at = page_on(ui_library.index_dir, monkeypatch, tiny_clap_dir if given_model else None)
    server.warm_up().join()
    [index], [model] = counted["indexes"], counted["models"]
    assert index._model is model                    # loaded before anyone searched

    at.query_params["q"] = "dog barking"
    at.run()
    assert not at.exception and not at.error
    assert any("dog" in md.value for md in at.markdown)
    assert counted["indexes"] == [index] and counted["models"] == [model]      # nothing opened or loaded again
    assert server.warming(str(ui_library.index_dir.resolve()), str(tiny_clap_dir) if given_model else None) is None


def test_an_index_that_fails_to_open_ahead_shows_its_error_on_the_page_every_time(ui_library: UiLibrary,  # noqa: F811
                                                                                    tmp_path, monkeypatch, counted):
    broken = tmp_path / "index"
    shutil.copytree(ui_library.index_dir, broken)
    for vectors in broken.glob("vectors-*.faiss"):
        vectors.unlink()
    at = page_on(broken, monkeypatch)
    server.warm_up().join()
    assert counted["indexes"] == [] and counted["models"] == []

    for _ in range(2):              # then opened again, on the page's next run (it may be repaired meanwhile)
        at.run()
        assert not at.exception
        assert [e.value for e in at.error if ".faiss is missing" in e.value and "--rebuild" in e.value]
    assert counted["models"] == []


def test_a_missing_index_opened_ahead_says_how_to_build_it(tmp_path, monkeypatch, counted):
    at = page_on(tmp_path / "nowhere", monkeypatch)
    server.warm_up().join()
    at.run()
    assert not at.exception
    assert any("soundsift index" in e.value for e in at.error)


def test_the_page_process_starts_loading_before_streamlit_serves(monkeypatch):
    cmd = server.streamlit_command(8600)
    assert cmd[1:4] == ["-m", "ui.components.server", "run"] and cmd[4] == str(server.APP_SCRIPT)
    seen = {}

    def streamlit_cli(args, prog_name):
        seen.update(args=args, prog_name=prog_name, warming=set(server._warming))
        raise SystemExit(0)

    from streamlit.web import cli
    monkeypatch.setattr(cli, "main", streamlit_cli)
    monkeypatch.setattr(server, "until_serving", lambda: False)        # no Streamlit here: nothing loads
    monkeypatch.setattr(server, "_exit_now", lambda code: seen.update(exit_now=code))
    monkeypatch.setenv(server.INDEX_ENV, "/x/idx")
    monkeypatch.delenv(server.MODEL_ENV, raising=False)
    with pytest.raises(SystemExit):
        server.main(cmd[3:])
    future = server.warming("/x/idx", None)
    assert seen["warming"] == {("/x/idx", None)} and seen["args"] == cmd[3:]
    with pytest.raises(RuntimeError, match="stopped before the index was opened"):
        future.result(timeout=30)


def test_ctrl_c_stops_the_page_server_while_it_loads(ui_library: UiLibrary):  # noqa: F811
    """SIGINT at once once the server answers (the model loading or about to): it exits with 0,
    not aborted by a thread inside torch, nor held for the load, and without Streamlit's
    'No runtime found' warning (nothing of the page is imported before Streamlit serves)."""
    port = free_port()
    proc = server.start_page(ui_library.index_dir, port=port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        server.wait_until_healthy(f"http://127.0.0.1:{port}", timeout=60, proc=proc)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "Traceback" not in log and "No runtime found" not in log and "terminate called" not in log, log
