"""Request bodies as JSON: a body nested too deeply to parse is bad input like any other, not a crash."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a RecursionError while reading (100,000 nested "[") turned into the ValueError of bad JSON."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # get_json treats a ValueError as a body that is not JSON: None with silent=True, else a 400
            raise ValueError("the JSON is nested too deeply") from None


def init_app(app: Flask) -> None:
    """Use the provider for the app's request bodies (and its responses, unchanged)."""
    app.json = JSONProvider(app)
