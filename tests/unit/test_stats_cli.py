"""``vssid-gateway stats``: where it finds the service, and what one screen shows."""

from __future__ import annotations

import pytest

from gateway.cli_stats import base_url


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("tcp:8080:interface=127.0.0.1", "http://127.0.0.1:8080"),
        ("tcp:port=9090", "http://127.0.0.1:9090"),
        ("tcp:8080:interface=0.0.0.0", "http://127.0.0.1:8080"),
        (r"tcp6:8080:interface=\:\:1", "http://[::1]:8080"),
        (r"tcp6:8080:interface=\:\:", "http://[::1]:8080"),
        ("ssl:8443:privateKey=key.pem:interface=10.0.0.5", "https://10.0.0.5:8443"),
    ],
)
def test_the_url_comes_from_the_listen_endpoint(listen: str, url: str) -> None:
    assert base_url(listen) == url


def test_a_unix_socket_listener_needs_an_explicit_url() -> None:
    with pytest.raises(ValueError, match="use --url"):
        base_url("unix:/run/vssid/http.sock")
