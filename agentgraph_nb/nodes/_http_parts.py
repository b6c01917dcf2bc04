"""Parts of the HTTP nodes (:mod:`agentgraph_nb.nodes.http`) that stand on their own: auth
(bearer, basic, API key, OAuth2 client credentials), pagination, and the typed errors a request
becomes. Public names are imported from :mod:`agentgraph_nb.nodes.http`."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from agentgraph_nb.errors import (
    HttpConnectError,
    HttpError,
    HttpStatusError,
    HttpTimeoutError,
    NodeValueError,
)
from agentgraph_nb.nodes._base import get_path, node_name

__all__ = [
    "ApiKey",
    "Basic",
    "Bearer",
    "OAuth2ClientCredentials",
    "api_key",
    "basic",
    "bearer",
    "next_link",
    "oauth2_client_credentials",
    "page_param",
    "status_error",
    "transport_error",
]


# -- auth ---------------------------------------------------------------------------------------------


class Bearer:
    """``Authorization: Bearer TOKEN``."""

    def __init__(self, token: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}"}
        self.params: dict[str, str] = {}

    def __repr__(self) -> str:
        return "Bearer(***)"


class Basic:
    """HTTP basic auth (``Authorization: Basic ...``)."""

    def __init__(self, username: str, password: str) -> None:
        raw = f"{username}:{password}".encode()
        self.headers = {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        self.params: dict[str, str] = {}
        self.username = username

    def __repr__(self) -> str:
        return f"Basic({self.username!r}, ***)"


class ApiKey:
    """An API key in a header (default ``X-API-Key``) or in a query parameter (``param=``)."""

    def __init__(self, key: str, *, header: str = "X-API-Key", param: str | None = None) -> None:
        self.headers = {} if param else {header: key}
        self.params = {param: key} if param else {}
        self.where = param or header

    def __repr__(self) -> str:
        return f"ApiKey(***, {self.where!r})"


class OAuth2ClientCredentials:
    """OAuth2 client credentials: a token fetched from ``token_url`` with the client id and
    secret, kept until shortly before it expires, then fetched again (also after a 401).

    Args:
        token_url: the token endpoint.
        client_id: the client id.
        client_secret: the client secret (sent with HTTP basic auth, as RFC 6749 prefers).
        scope: optional space-separated scopes.
        leeway: seconds before ``expires_in`` runs out at which the token is renewed.
    """

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, *, scope: str | None = None, leeway: float = 30.0
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.leeway = leeway
        self.params: dict[str, str] = {}
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self._alocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self.fetches = 0  # how many tokens were fetched (for tests and curiosity)

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, {self.client_id!r}, ***)"

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        raw = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}".encode()
        return form, {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _store(self, resp: httpx.Response, who: str) -> str:
        name = node_name(who)
        if resp.status_code >= 400:
            raise status_error(name, "POST", self.token_url, resp, what="the OAuth2 token request")
        try:
            data = resp.json()
            token = str(data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise NodeValueError(
                f"node {name!r}: the OAuth2 token endpoint {self.token_url} answered without an "
                f"access_token: {resp.text[:200]!r}",
                node=name,
                resource=self.token_url,
                url=self.token_url,
            ) from None
        expires_in = data.get("expires_in")
        life = float(expires_in) if isinstance(expires_in, (int, float, str)) and str(expires_in).replace(".", "", 1).isdigit() else 3600.0
        self._token, self._expires = token, time.monotonic() + max(0.0, life - self.leeway)
        self.fetches += 1
        return token

    def _cached(self) -> str | None:
        return self._token if self._token is not None and time.monotonic() < self._expires else None

    def invalidate(self) -> None:
        """Forget the token (the next request fetches a new one)."""
        self._token = None

    def token(self, client: httpx.Client, who: str) -> str:
        """The current token, fetched with ``client`` when there is none or it expired."""
        tok = self._cached()
        if tok is not None:
            return tok
        with self._lock:
            tok = self._cached()
            if tok is not None:
                return tok
            form, headers = self._request()
            try:
                resp = client.post(self.token_url, data=form, headers=headers)
            except httpx.HTTPError as exc:
                raise transport_error(node_name(who), "POST", self.token_url, exc) from exc
            return self._store(resp, who)

    async def atoken(self, client: httpx.AsyncClient, who: str) -> str:
        """:meth:`token` for async nodes."""
        tok = self._cached()
        if tok is not None:
            return tok
        loop = asyncio.get_running_loop()
        lock = self._alocks.get(loop)
        if lock is None:
            lock = self._alocks[loop] = asyncio.Lock()
        async with lock:  # concurrent calls on one loop wait for one fetch
            tok = self._cached()
            if tok is not None:
                return tok
            form, headers = self._request()
            try:
                resp = await client.post(self.token_url, data=form, headers=headers)
            except httpx.HTTPError as exc:
                raise transport_error(node_name(who), "POST", self.token_url, exc) from exc
            return self._store(resp, who)


def bearer(token: str) -> Bearer:
    """Auth with a bearer token: ``http_get(url, auth=bearer(token))``."""
    return Bearer(token)


def basic(username: str, password: str) -> Basic:
    """HTTP basic auth: ``http_get(url, auth=basic("user", "pw"))``."""
    return Basic(username, password)


def api_key(key: str, *, header: str = "X-API-Key", param: str | None = None) -> ApiKey:
    """An API key in a header, or in the query with ``param="api_key"``."""
    return ApiKey(key, header=header, param=param)


def oauth2_client_credentials(
    token_url: str, client_id: str, client_secret: str, *, scope: str | None = None, leeway: float = 30.0
) -> OAuth2ClientCredentials:
    """OAuth2 client-credentials auth; see :class:`OAuth2ClientCredentials`.

    Example:
        >>> auth = oauth2_client_credentials("https://id.example.com/token", "app", "secret")
        >>> node = http_get("https://api.example.com/me", auth=auth, into="me")  # doctest: +SKIP
    """
    return OAuth2ClientCredentials(token_url, client_id, client_secret, scope=scope, leeway=leeway)


# -- pagination ---------------------------------------------------------------------------------------


class _Paging:
    items: str | None
    max_pages: int

    def _items(self, data: Any, who: str, url: str) -> list[Any]:
        page = get_path(data, self.items, who=who, what="response key") if self.items else data
        if not isinstance(page, list):
            name = node_name(who)
            raise NodeValueError(
                f"node {name!r}: page of {url} has no list of items"
                f"{f' under {self.items!r}' if self.items else ''} (got {type(page).__name__})",
                node=name,
                resource=url,
                url=url,
            )
        return page


class next_link(_Paging):
    """Follow the next page's URL: the ``Link: <...>; rel="next"`` header (``key=None``) or a
    (dotted) key of the JSON body, until there is none.

    Args:
        key: where the body holds the next URL (``"next"``, ``"links.next"``); None for the header.
        items: where each page holds its items (None: the page is the list).
        max_pages: stop after this many pages.
    """

    def __init__(self, key: str | None = None, *, items: str | None = None, max_pages: int = 100) -> None:
        self.key = key
        self.items = items
        self.max_pages = max_pages

    def next(self, resp: httpx.Response, data: Any) -> str | None:
        if self.key is None:
            link = resp.links.get("next")
            return link.get("url") if link else None
        cur = data
        for part in self.key.split("."):
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        return str(cur) if cur else None


class page_param(_Paging):
    """Count pages with a query parameter (``?page=1``, ``?page=2``, ...) until a page has no items.

    Args:
        name: the query parameter.
        start: the first page's number.
        items: where each page holds its items (None: the page is the list).
        max_pages: stop after this many pages.
    """

    def __init__(self, name: str = "page", *, start: int = 1, items: str | None = None, max_pages: int = 100) -> None:
        self.name = name
        self.start = start
        self.items = items
        self.max_pages = max_pages


# -- errors -------------------------------------------------------------------------------------------


def status_error(name: str, method: str, url: str, resp: httpx.Response, what: str = "") -> HttpStatusError:
    body = resp.text[:1000] if resp.content else ""
    phrase = resp.reason_phrase or ""
    tail = f": {body[:200]!r}" if body else ""
    retried = " (retried: 429 and 5xx are)" if resp.status_code == 429 or resp.status_code >= 500 else " (not retried: a 4xx other than 429 will not change)"
    return HttpStatusError(
        f"node {name!r}: {what or method} {url} answered {resp.status_code} {phrase}{tail}{retried}",
        node=name,
        resource=url,
        url=url,
        method=method,
        status_code=resp.status_code,
        headers={k.lower(): v for k, v in resp.headers.items()},
        body=body,
    )


def transport_error(name: str, method: str, url: str, exc: BaseException) -> HttpError:
    if isinstance(exc, httpx.TimeoutException):
        return HttpTimeoutError(
            f"node {name!r}: {method} {url} timed out ({type(exc).__name__}); raise the node's timeout= if the "
            "server is slow",
            node=name,
            resource=url,
            url=url,
            method=method,
        )
    if isinstance(exc, httpx.TransportError):
        return HttpConnectError(
            f"node {name!r}: {method} {url} failed: cannot connect ({type(exc).__name__}: {exc})",
            node=name,
            resource=url,
            url=url,
            method=method,
        )
    return HttpError(
        f"node {name!r}: {method} {url} failed: {type(exc).__name__}: {exc}",
        node=name,
        resource=url,
        url=url,
        method=method,
    )
