"""Security headers on every response Flask makes: no framing, no sniffing, no referrer to other sites.

The policy does not yet restrict scripts: folium writes inline scripts whose ids change on every
render, which needs per-response nonces (issue 16); until then the CSP carries only the directives
that need none of that (framing, base URI, form targets, plug-ins).
"""

from __future__ import annotations

from flask import Flask, Response

HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a case page's address never leaves for another site
}


def init_app(app: Flask) -> None:
    """Add the headers to every response (a view's own choice is kept)."""

    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
