"""Open mode over real HTTP: the admin API answers 403 saying how to configure keys, and the README's
example (official client, ``api_key="none"``) is answered before and after such an attempt."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Server, ask_like_the_readme

pytestmark = pytest.mark.e2e


def test_open_mode_refuses_admin_routes_and_the_readme_example_keeps_working(server: Server) -> None:
    text, citations = ask_like_the_readme(server)  # the control, before any admin attempt
    assert text.strip() and citations
    attempts = (("POST", "", {"tenant": "x", "role": "admin"}), ("GET", "", None),
                ("POST", "/key-0000000000000000/revoke", None), ("POST", "/key-0000000000000000/rotate", None))
    for method, path, body in attempts:
        refused = httpx.request(method, server.openai_base + "/admin/keys" + path, json=body, timeout=30,
                                headers={"authorization": "Bearer none"})
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["type"] == "permission_error" and error["code"] == "open_mode"
        assert "ragd keys create" in error["message"] and "RAGD_GATEWAY_AUTH" in error["message"]
    text, citations = ask_like_the_readme(server)
    assert text.strip() and citations
