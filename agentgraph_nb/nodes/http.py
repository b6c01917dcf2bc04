"""HTTP nodes (extra ``http``, on httpx): a request whose URL, query, body and headers are filled
from the state, with auth, retries, timeouts, pagination and JSON parsing into a state key.

Example:
    >>> from agentgraph_nb.nodes.http import http_get, bearer
    >>> g.add_node("weather", http_get("https://api.example.com/weather/{city}",
    ...                                auth=bearer("TOKEN"), into="weather"))  # doctest: +SKIP

Values put into the URL are percent-quoted (``{city}`` = ``"a/b?c"`` becomes ``a%2Fb%3Fc``), so a
state value can never add a path segment, a query or another host. ``params=``, ``json=`` and
``headers=`` take templates too: ``"{key}"`` alone stands for the state value itself (a number stays
a number in JSON), any other ``{field}`` inside a string is replaced by its text.

Connections are pooled per node (one ``httpx.Client``, or one ``httpx.AsyncClient`` per event
loop for ``aio=True``), closed by the node's ``close()``, by ``app.close()`` and at exit; pass
``client=`` to share one client between nodes (then it is yours to close).

Failures are typed (:mod:`agentgraph_nb.errors`), each naming the node and the URL:
:class:`~agentgraph_nb.errors.HttpStatusError` (status >= 400),
:class:`~agentgraph_nb.errors.HttpConnectError`, :class:`~agentgraph_nb.errors.HttpTimeoutError`
and :class:`~agentgraph_nb.errors.NodeValueError` (a body that is not the JSON it claims to be).
The node retries 429 and 5xx (waiting what ``Retry-After`` asks), connection errors and
timeouts through its ``retry=`` :class:`~agentgraph_nb.RetryPolicy`, never other 4xx. Pass
``retry=None`` to leave retries to the graph (``add_node(..., retry=RetryPolicy())`` treats these
errors the same way, and its retries show in the run's events).

This module holds the node, in its sync and async flavours (they share everything but the
sending loop), and its factories; auth, pagination and the error constructors live in
``_http_parts`` and are imported from here.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import random
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from agentgraph_nb.errors import HttpError, NodeValueError
from agentgraph_nb.llm._cassette import active_cassette
from agentgraph_nb.nodes._base import (
    LibraryNode,
    Template,
    compile_templates,
    fill,
    get_path,
    node_name,
)
from agentgraph_nb.nodes._http_parts import (
    ApiKey,
    Basic,
    Bearer,
    OAuth2ClientCredentials,
    api_key,
    basic,
    bearer,
    next_link,
    oauth2_client_credentials,
    page_param,
    status_error,
    transport_error,
)
from agentgraph_nb.types import RetryPolicy

__all__ = [
    "ApiKey",
    "Basic",
    "Bearer",
    "HttpNode",
    "OAuth2ClientCredentials",
    "api_key",
    "basic",
    "bearer",
    "http_get",
    "http_post",
    "http_request",
    "next_link",
    "oauth2_client_credentials",
    "page_param",
]

_log = logging.getLogger("agentgraph_nb.nodes")

DEFAULT_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.2, backoff_factor=2.0, max_interval=30.0)
"""What an HTTP node retries by default: 3 attempts in all, 0.2 s then 0.4 s apart (plus jitter),
or what the server's ``Retry-After`` asks (up to 30 s)."""


def _quote(value: Any) -> str:
    return quote(str(value), safe="")


# -- the node -----------------------------------------------------------------------------------------

_open: weakref.WeakSet[HttpNode] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for node in list(_open):
        node.close()


class HttpNode(LibraryNode):
    """A node that makes an HTTP request; made by :func:`http_request` and friends."""

    kind = "http_request"

    def __init__(
        self,
        method: str,
        url: str,
        *,
        into: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Bearer | Basic | ApiKey | OAuth2ClientCredentials | None = None,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        response: str = "auto",
        select: str | None = None,
        paginate: next_link | page_param | None = None,
        client: Any = None,
        follow_redirects: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = f"http_{method.lower()}" if method.upper() in ("GET", "POST") else "http_request"
        if response not in ("auto", "json", "text", "bytes"):
            raise ValueError(f"{self.kind}: response must be 'auto', 'json', 'text' or 'bytes', got {response!r}")
        if json is not None and data is not None:
            raise ValueError(f"{self.kind}: give json= or data=, not both")
        self.method = method.upper()
        self.url_text = url
        whole = Template(url)
        # a URL that is a single field ("{api_url}") is taken as a whole URL, unquoted
        self._url: Template | str = (
            Template(url) if whole.fields and not (len(whole.parts) == 1 and whole.parts[0][0] == "")
            else url
        )
        if isinstance(self._url, Template):
            self._url.quote = _quote
        self._url_field = whole.fields[0] if whole.fields and not isinstance(self._url, Template) else None
        self.into = into
        self._params = compile_templates(dict(params)) if params else None
        self._json = compile_templates(json) if json is not None else None
        self._data = compile_templates(data) if data is not None else None
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs.update(getattr(auth, "headers", {}) or {})
        self._headers = compile_templates(hdrs) if hdrs else None
        self._auth_params = dict(getattr(auth, "params", {}) or {})
        self._oauth = auth if isinstance(auth, OAuth2ClientCredentials) else None
        self.auth = auth
        self.timeout = timeout
        self.retry = retry
        self.response = response
        self.select = select
        self.paginate = paginate
        self._client = client
        self._own = client is None
        self._follow = follow_redirects
        self._lock = threading.Lock()
        self._rng = random.Random()

    # -- request parts ----------------------------------------------------------------------------
    def _url_for(self, state: Any) -> str:
        u = self._url
        if isinstance(u, Template):
            return u.render(state, who=self.who)
        if self._url_field is not None:
            value = str(get_path(state, self._url_field, who=self.who, what="URL field"))
            if not value.startswith(("http://", "https://")):
                name = node_name(self.who)
                raise NodeValueError(
                    f"node {name!r}: state key {self._url_field!r} must hold an http(s) URL, got {value[:100]!r}",
                    node=name,
                    resource=self._url_field,
                    key=self._url_field,
                )
            return value
        return u

    def _kwargs(self, state: Any) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self._params is not None or self._auth_params:
            params = fill(self._params, state, who=self.who) if self._params is not None else {}
            if self._auth_params:
                params = {**params, **self._auth_params}
            kw["params"] = params
        if self._json is not None:
            kw["json"] = fill(self._json, state, who=self.who)
        elif self._data is not None:
            body = fill(self._data, state, who=self.who)
            kw["content" if isinstance(body, (str, bytes)) else "data"] = body
        if self._headers is not None:
            headers = fill(self._headers, state, who=self.who)
            for k, v in headers.items():
                if any(c in str(v) for c in "\r\n\0"):  # a state value must not add a header
                    name = node_name(self.who)
                    raise NodeValueError(
                        f"node {name!r}: header {k!r} would contain a line break or NUL (from the state); refused",
                        node=name, resource=str(k), key=str(k),
                    )
            kw["headers"] = headers
        return kw

    def _parse(self, resp: httpx.Response, url: str) -> Any:
        mode = self.response
        if mode == "bytes":
            return resp.content
        if mode == "text":
            return resp.text
        if mode == "auto" and "json" not in resp.headers.get("content-type", ""):
            return resp.text
        if not resp.content:
            return None
        try:
            data = resp.json()
        except ValueError as exc:
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: {self.method} {url} returned malformed JSON ({exc}): {resp.text[:200]!r}",
                node=name,
                resource=url,
                url=url,
            ) from None
        if self.select:
            data = get_path(data, self.select, who=self.who, what="response key")
        return data

    def _update(self, data: Any) -> dict[str, Any] | None:
        if self.into is not None:
            return {self.into: data}
        if data is None or isinstance(data, dict):
            return data
        name = node_name(self.who)
        raise NodeValueError(
            f"node {name!r}: the response is a {type(data).__name__}, not an object, so it cannot be the "
            f"node's update; give the node into='key' to put it under a state key",
            node=name,
            resource=self.url_text,
            url=self.url_text,
        )

    def _next_url(self, resp: httpx.Response, nxt: str) -> str:
        """The next page's URL, which must stay on the first page's origin: the node's
        credentials go with every page, so a response must not send them to another host."""
        url = urljoin(str(resp.url), nxt)
        here, there = urlsplit(str(resp.url)), urlsplit(url)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: the next page of {resp.url} is on another origin ({url}); refused, so "
                "that the node's credentials are not sent there",
                node=name, resource=url, url=url,
            )
        return url

    def _first_page(self, kw: dict[str, Any]) -> dict[str, Any]:
        p = self.paginate
        if isinstance(p, page_param):
            kw["params"] = {**kw.get("params", {}), p.name: p.start}
        return kw

    def _wait(self, attempt: int, err: HttpError) -> float | None:
        """Seconds to wait before another attempt, or None when ``err`` is final."""
        r = self.retry
        if r is None or attempt >= r.max_attempts or not r.should_retry(err):
            return None
        wait = r.interval(attempt - 1, self._rng, err)
        _log.warning("%s; attempt %d of %d in %.2fs", err, attempt + 1, r.max_attempts, wait)
        return wait

    # -- record and replay (agentgraph_nb.testing.cassette) ---------------------------------------
    def _taped(self, url: str, kw: dict[str, Any]) -> dict[str, Any]:
        """The request as a cassette keeps it: method, URL, query and body; never the headers
        (credentials live there), and the API-key query parameter masked."""
        req: dict[str, Any] = {"http": self.method, "url": url}
        params = kw.get("params")
        if params is not None:
            req["params"] = {k: ("<secret>" if k in self._auth_params else v) for k, v in params.items()}
        for k in ("json", "data", "content"):
            if k in kw:
                v = kw[k]
                req[k] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        return req

    def _replay(self, cas: Any, url: str, kw: dict[str, Any]) -> httpx.Response:
        rec = cas.take(self._taped(url, kw), what=f"node {node_name(self.who)!r} ({self.method} {url})")
        body = rec["body"]
        return httpx.Response(rec["status"], headers=rec.get("headers") or {},
                              content=body.encode("latin-1") if rec.get("binary") else body.encode("utf-8"),
                              request=httpx.Request(self.method, url))

    # -- sync -------------------------------------------------------------------------------------
    def client(self) -> httpx.Client:
        """The node's pooled client (made on first use)."""
        c = self._client
        if c is None:
            with self._lock:
                c = self._client
                if c is None:
                    c = self._client = httpx.Client(timeout=self.timeout, follow_redirects=self._follow)
                    _open.add(self)
        return c  # type: ignore[no-any-return]

    def _send(self, client: httpx.Client, url: str, kw: dict[str, Any]) -> httpx.Response:
        attempt = 1
        while True:
            cas = active_cassette()
            try:
                if cas is not None and cas.replaying:
                    resp = self._replay(cas, url, kw)
                else:
                    if self._oauth is not None:
                        kw["headers"] = {**kw.get("headers", {}),
                                         "Authorization": f"Bearer {self._oauth.token(client, self.who)}"}
                    resp = client.request(self.method, url, **kw)
                    if cas is not None:
                        cas.add(self._taped(url, kw), _taped_response(resp))
            except httpx.HTTPError as exc:
                err: HttpError = transport_error(node_name(self.who), self.method, url, exc)
                err.__cause__ = exc
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code == 401 and self._oauth is not None and attempt == 1:
                    self._oauth.invalidate()  # the token was revoked or expired early: fetch one more
                    attempt += 1
                    continue
                err = status_error(node_name(self.who), self.method, url, resp)
            wait = self._wait(attempt, err)
            if wait is None:
                raise err
            time.sleep(wait)
            attempt += 1

    def __call__(self, state: Any) -> dict[str, Any] | None:
        url = self._url_for(state)
        kw = self._first_page(self._kwargs(state))
        client = self.client()
        resp = self._send(client, url, kw)
        if self.paginate is None:
            return self._update(self._parse(resp, url))
        return self._update(self._pages(resp, url, kw, lambda u, k: self._send(client, u, k)))

    def _pages(self, resp: httpx.Response, url: str, kw: dict[str, Any], send: Any) -> list[Any]:
        p = self.paginate
        assert p is not None
        data = self._parse(resp, url)
        out = list(p._items(data, self.who, url))
        page = getattr(p, "start", 1)
        for _ in range(p.max_pages - 1):
            if isinstance(p, next_link):
                nxt = p.next(resp, data)
                if not nxt:
                    break
                url = self._next_url(resp, nxt)
                kw = {k: v for k, v in kw.items() if k != "params"}  # the next link carries its query
            else:
                page += 1
                kw = {**kw, "params": {**kw.get("params", {}), p.name: page}}
            resp = send(url, kw)
            data = self._parse(resp, url)
            items = p._items(data, self.who, url)
            if isinstance(p, page_param) and not items:
                break
            out.extend(items)
        return out

    def close(self) -> None:
        """Close the node's pooled client (a client passed in with ``client=`` stays open)."""
        _open.discard(self)
        if self._own:
            c, self._client = self._client, None
            if c is not None:
                c.close()


class AsyncHttpNode(HttpNode):
    """The async flavour of :class:`HttpNode` (``aio=True``): an ``httpx.AsyncClient`` per event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def aclient(self) -> httpx.AsyncClient:
        """The node's pooled async client for the running event loop (made on first use)."""
        if not self._own:
            return self._client  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        c = self._aclients.get(loop)
        if c is None:
            c = self._aclients[loop] = httpx.AsyncClient(timeout=self.timeout, follow_redirects=self._follow)
        return c

    async def _asend(self, client: httpx.AsyncClient, url: str, kw: dict[str, Any]) -> httpx.Response:
        attempt = 1
        while True:
            cas = active_cassette()
            try:
                if cas is not None and cas.replaying:
                    resp = self._replay(cas, url, kw)
                else:
                    if self._oauth is not None:
                        tok = await self._oauth.atoken(client, self.who)
                        kw["headers"] = {**kw.get("headers", {}), "Authorization": f"Bearer {tok}"}
                    resp = await client.request(self.method, url, **kw)
                    if cas is not None:
                        cas.add(self._taped(url, kw), _taped_response(resp))
            except httpx.HTTPError as exc:
                err: HttpError = transport_error(node_name(self.who), self.method, url, exc)
                err.__cause__ = exc
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code == 401 and self._oauth is not None and attempt == 1:
                    self._oauth.invalidate()
                    attempt += 1
                    continue
                err = status_error(node_name(self.who), self.method, url, resp)
            wait = self._wait(attempt, err)
            if wait is None:
                raise err
            await asyncio.sleep(wait)
            attempt += 1

    async def __call__(self, state: Any) -> dict[str, Any] | None:  # type: ignore[override]
        url = self._url_for(state)
        kw = self._first_page(self._kwargs(state))
        client = self.aclient()
        resp = await self._asend(client, url, kw)
        if self.paginate is None:
            return self._update(self._parse(resp, url))
        # pages one after another: each needs the one before
        items: list[Any] = []
        p = self.paginate
        data = self._parse(resp, url)
        items.extend(p._items(data, self.who, url))
        page = getattr(p, "start", 1)
        for _ in range(p.max_pages - 1):
            if isinstance(p, next_link):
                nxt = p.next(resp, data)
                if not nxt:
                    break
                url = self._next_url(resp, nxt)
                kw = {k: v for k, v in kw.items() if k != "params"}
            else:
                page += 1
                kw = {**kw, "params": {**kw.get("params", {}), p.name: page}}
            resp = await self._asend(client, url, kw)
            data = self._parse(resp, url)
            got = p._items(data, self.who, url)
            if isinstance(p, page_param) and not got:
                break
            items.extend(got)
        return self._update(items)

    async def aclose(self) -> None:
        """Close the async client of the running loop (and the sync one, if any)."""
        if self._own:
            loop = asyncio.get_running_loop()
            c = self._aclients.pop(loop, None)
            if c is not None:
                await c.aclose()
        super().close()

    def close(self) -> None:
        """Forget the async clients (their connections close with their loops)."""
        if self._own:
            self._aclients.clear()
        super().close()


def _taped_response(resp: httpx.Response) -> dict[str, Any]:
    """A response as a cassette keeps it: status, the headers that matter for parsing and
    retrying, and the body (text; bytes that are not UTF-8 as latin-1, marked ``binary``)."""
    headers = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "retry-after", "link")}
    try:
        return {"status": resp.status_code, "headers": headers, "body": resp.content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"status": resp.status_code, "headers": headers, "body": resp.content.decode("latin-1"), "binary": True}


def http_request(
    method: str,
    url: str,
    *,
    into: str | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    auth: Bearer | Basic | ApiKey | OAuth2ClientCredentials | None = None,
    timeout: float | None = 10.0,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    response: str = "auto",
    select: str | None = None,
    paginate: next_link | page_param | None = None,
    client: Any = None,
    aio: bool = False,
    follow_redirects: bool = True,
    name: str | None = None,
) -> HttpNode:
    """A node that makes an HTTP request filled from the state and puts the answer in the state.

    Args:
        method: ``"GET"``, ``"POST"``, ``"PUT"``, ``"PATCH"``, ``"DELETE"``, ...
        url: the URL; ``{key}`` fields are state values, percent-quoted. A URL that is one field
            alone (``"{api_url}"``) takes the state value whole (it must be http or https).
        into: the state key for the answer; None: the answer (a JSON object) is the update.
        params: query parameters (values may be templates, see the module docs).
        json: a JSON body (a template structure: ``{"q": "{question}"}``).
        data: a form body (a dict) or raw text.
        headers: extra headers (values may be templates).
        auth: :func:`bearer`, :func:`basic`, :func:`api_key` or :func:`oauth2_client_credentials`.
        timeout: seconds for connecting and for each read (None: no limit).
        retry: the :class:`~agentgraph_nb.RetryPolicy` for 429, 5xx, connection errors and
            timeouts; None to fail at once.
        response: ``"auto"`` (JSON when the response says so, else text), ``"json"``, ``"text"``
            or ``"bytes"``.
        select: a dotted key of the JSON answer to keep (``"data.items"``).
        paginate: :class:`next_link` or :class:`page_param`: fetch every page, keep the items.
        client: an ``httpx.Client`` (``AsyncClient`` with ``aio=True``) to use instead of the
            node's own pool; not closed by the node.
        aio: make an ``async`` node (for graphs run with ``ainvoke``/``astream``, or mixed).
        follow_redirects: follow 3xx redirects.
        name: the node's name in errors raised outside a run.

    Returns:
        The node: ``node(state) -> {into: answer}``.

    Raises:
        ValueError: contradicting arguments (at once, not when the graph runs).

    Example:
        >>> node = http_request("PUT", "https://api.example.com/items/{item_id}",
        ...                     json={"name": "{name}", "count": "{count}"}, into="saved")
        >>> g.add_node("save", node)  # doctest: +SKIP
    """
    cls = AsyncHttpNode if aio else HttpNode
    return cls(
        method,
        url,
        into=into,
        params=params,
        json=json,
        data=data,
        headers=headers,
        auth=auth,
        timeout=timeout,
        retry=retry,
        response=response,
        select=select,
        paginate=paginate,
        client=client,
        follow_redirects=follow_redirects,
        name=name,
    )


def http_get(url: str, **options: Any) -> HttpNode:
    """A GET node: ``http_get("https://api.example.com/weather/{city}", into="weather")``.

    Takes the options of :func:`http_request`.

    Example:
        >>> g.add_node("w", http_get("https://api.example.com/{city}", into="weather"))  # doctest: +SKIP
    """
    return http_request("GET", url, **options)


def http_post(url: str, **options: Any) -> HttpNode:
    """A POST node: ``http_post("https://api.example.com/ask", json={"q": "{question}"}, into="answer")``.

    Takes the options of :func:`http_request`.
    """
    return http_request("POST", url, **options)
