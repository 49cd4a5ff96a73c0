"""Fetching remote @context documents from a real HTTP server on a loopback port."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from _servers import QuietHandler, serving

from context_broker._context_fetch import FetchAllowList, HttpContextFetcher
from context_broker._errors import BadRequestData, LdContextNotAvailable

GOOD = {"@context": {"speed": "http://example.org/speed"}}
TIMEOUT_S = 0.5
MAX_BYTES = 4096


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        if self.path == "/good.jsonld":
            self.send_body(200, json.dumps(GOOD).encode(), "application/ld+json")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/good.jsonld")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(TIMEOUT_S * 4)
            self.send_body(200, json.dumps(GOOD).encode())
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self._drip()
        elif self.path == "/huge":
            self.send_body(200, b'{"@context": {"a": "' + b"x" * (MAX_BYTES * 4) + b'"}}')
        elif self.path == "/huge-undeclared":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"@context": {"a": "' + b"x" * (MAX_BYTES * 4) + b'"}}')
            self.close_connection = True
        elif self.path == "/invalid":
            self.send_body(200, b'{"@context": {')
        elif self.path == "/not-a-context":
            self.send_body(200, b'{"speed": "http://example.org/speed"}')
        elif self.path == "/accept":
            echo = {"@context": {}, "accept": self.headers["Accept"]}
            self.send_body(200, json.dumps(echo).encode())
        else:
            self.send_body(404, b'{"title": "not found"}')

    def _drip(self) -> None:
        # one byte every 0.1 s: each read is quick, the whole never completes in time
        try:
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        self.close_connection = True


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpContextFetcher]:
    allow = FetchAllowList.parse("127.0.0.1")
    async with HttpContextFetcher(TIMEOUT_S, MAX_BYTES, allow) as fetcher:
        yield fetcher


async def test_a_context_document_is_fetched_and_parsed(
    fetcher: HttpContextFetcher, base_url: str
) -> None:
    assert await fetcher(base_url + "/good.jsonld") == GOOD


async def test_redirects_are_followed(fetcher: HttpContextFetcher, base_url: str) -> None:
    assert await fetcher(base_url + "/redirect") == GOOD


async def test_json_ld_is_asked_for(fetcher: HttpContextFetcher, base_url: str) -> None:
    document = await fetcher(base_url + "/accept")
    assert isinstance(document, dict)
    assert "application/ld+json" in document["accept"]


@pytest.mark.parametrize("path", ["/missing", "/huge", "/huge-undeclared"])
async def test_unusable_answers_are_ld_context_not_available(
    fetcher: HttpContextFetcher, base_url: str, path: str
) -> None:
    """Whatever went wrong, the client reads the same detail: it learns nothing of the server."""
    with pytest.raises(LdContextNotAvailable) as caught:
        await fetcher(base_url + path)
    assert caught.value.detail == (
        f"@context {base_url + path} could not be retrieved: it must be a JSON-LD @context "
        f"document of at most {MAX_BYTES} bytes, served within {TIMEOUT_S:g} s from a public "
        "address"
    )
    assert caught.value.status == 504


@pytest.mark.parametrize("path", ["/invalid", "/not-a-context"])
async def test_an_answer_that_is_no_context_is_bad_request_data(
    fetcher: HttpContextFetcher, base_url: str, path: str
) -> None:
    """The server answered, with something that is not a JSON-LD @context: the client's error."""
    with pytest.raises(BadRequestData, match="is not a JSON-LD @context") as caught:
        await fetcher(base_url + path)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.org/ctx.jsonld",
        "http://[::1/ctx.jsonld",
        "http://example.org:99999/ctx.jsonld",
        "http://" + "a" * 70 + ".example/ctx.jsonld",
    ],
)
async def test_a_malformed_url_is_bad_request_data(fetcher: HttpContextFetcher, url: str) -> None:
    """A URL that cannot be fetched as written is the client's error, found before any fetch."""
    with pytest.raises(BadRequestData, match="malformed"):
        await fetcher(url)


@pytest.mark.parametrize("path", ["/slow", "/drip"])
async def test_the_total_time_is_bounded_by_the_timeout(
    fetcher: HttpContextFetcher, base_url: str, path: str
) -> None:
    started = time.monotonic()
    with pytest.raises(LdContextNotAvailable, match=r"within 0\.5 s"):
        await fetcher(base_url + path)
    assert time.monotonic() - started < TIMEOUT_S + 1.0


async def test_an_unreachable_server_is_ld_context_not_available(
    fetcher: HttpContextFetcher,
) -> None:
    with pytest.raises(LdContextNotAvailable, match="could not be retrieved"):
        await fetcher("http://127.0.0.1:9/context.jsonld")


@pytest.mark.parametrize(
    "url", ["ftp://example.org/ctx.jsonld", "file:///etc/passwd", "context.jsonld", "http://"]
)
async def test_only_http_urls_are_fetched(fetcher: HttpContextFetcher, url: str) -> None:
    with pytest.raises(BadRequestData, match=r"must be http\(s\)"):
        await fetcher(url)
