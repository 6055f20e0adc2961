"""The server process of ``xlainspect view``: Model Explorer's Flask server with the view's graphs and node data.

Run as ``python -m xlainspect.output.model_explorer._serve SPEC PARENT_PID`` by :func:`._view.serve`. It exits when
its parent is gone (checked twice a second), so a ``view`` killed without a chance to stop it leaves no server.

Two things Model Explorer 0.1.34 would fetch from the network are kept local, so the page and the server load
nothing from outside the machine (the browser test checks Chromium's network log):

- its server asks PyPI and GitHub for a newer release when it starts and whenever its page loads
  (``server._check_new_version``); here that check answers "no newer version" without asking;
- its ``index.html`` declares the "Google Sans Text" font twice: from its own ``static_files/`` for Latin text, and
  from ``fonts.gstatic.com`` for other Unicode ranges, which the page's arrows and symbols fall into. Here the page is
  served without the ``fonts.gstatic.com`` declarations (and its ``preconnect`` to that host); those few
  characters fall back to a local font.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time

# An @font-face rule whose source is Google's font server.
_REMOTE_FONT_RE = re.compile(r"@font-face\s*\{[^}]*https://fonts\.gstatic\.com[^}]*\}"
                             r"|<link[^>]*href=\"https://fonts\.gstatic\.com\"[^>]*>")


def _exit_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def _no_version_check(print_msg: bool = True) -> dict[str, str]:
    del print_msg
    return {"version": "", "runningVersion": "", "releaseUrl": "", "desktopAppUrl": ""}


def offline_index(text: str) -> str:
    """Model Explorer's ``index.html`` without the fonts it would load from ``fonts.gstatic.com``."""
    return _REMOTE_FONT_RE.sub("", text)


def _offline_assets(serve_asset, web_app: str):
    import flask

    with open(os.path.join(web_app, "index.html"), encoding="utf-8") as f:
        index = offline_index(f.read())

    def serve(rel_path: str):
        if rel_path == "index.html":
            return flask.Response(index, mimetype="text/html")
        return serve_asset(rel_path)

    return serve


def main(spec_path: str, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    import model_explorer
    from model_explorer import server

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    config = model_explorer.config()
    for index, model in enumerate(spec["models"]):
        with open(model["graphs"], encoding="utf-8") as f:
            config.graphs_list.append(f.read())
        config.model_sources.append({"url": f"graphs://{model['name']}/{index}"})
    for model in spec["models"]:
        for overlay in model["overlays"]:
            with open(overlay["file"], encoding="utf-8") as f:
                config.add_node_data(overlay["name"], f.read(), model_name=model["name"])
    server._check_new_version = _no_version_check  # no PyPI or GitHub request (see the module docstring)
    server._serve_static_asset = _offline_assets(server._serve_static_asset, server.OSS_WEB_APP_DIR)
    server.start(host=spec["host"], port=spec["port"], config=config, no_open_in_browser=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
