"""Stand-ins for examples and tests: a deterministic fake chat model, a real local
OpenAI-compatible model server (:class:`ModelServer`), record and replay of model calls
(:func:`cassette`), and a few helpers.

Nothing here touches the network or needs an API key, and the same inputs always give the same
outputs, so notebooks that use it can be checked cell by cell (nbval) and tests can assert on
exact text.

Example:
    >>> from agentgraph_nb.testing import FakeChatModel
    >>> llm = FakeChatModel(seed=1)
    >>> llm.invoke("Research: tidal power") == FakeChatModel(seed=1).invoke("Research: tidal power")
    True
    >>> FakeChatModel(["yes", "no"]).invoke("anything")
    'yes'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from agentgraph_nb._model_server import ModelServer
from agentgraph_nb._servers import ServerUnavailableError
from agentgraph_nb.checkpoint.conformance import STORE_SCENARIOS, store_conformance
from agentgraph_nb.llm._cassette import Cassette, cassette

__all__ = [
    "STORE_SCENARIOS",
    "Cassette",
    "FakeChatModel",
    "Flaky",
    "ModelServer",
    "ScriptedChatModel",
    "ServerUnavailableError",
    "cassette",
    "fake_search",
    "flaky",
    "normalize_messages",
    "postgres_server",
    "redis_server",
    "store_conformance",
    "tool_call",
]

Message = tuple[str, str]

# The keyword that comes first in the last message picks the role: instructions usually lead
# ("Critique this draft: ..."), and the material quoted after them may mention other roles.
_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("critique", ("critique", "critic", "review", "feedback")),
    ("research", ("research", "investigate", "find facts", "look up", "search")),
    ("plan", ("plan", "outline", "steps")),
    ("summarize", ("summarize", "summarise", "summary", "tl;dr")),
    ("write", ("write", "draft", "compose", "revise", "rewrite")),
)

_FACTS = (
    "{topic} has been studied since the 1970s, but interest tripled in the last decade",
    "the main cost driver of {topic} is maintenance, not the initial build",
    "three independent surveys agree that {topic} works best at small scale first",
    "critics of {topic} point to uneven results across regions",
    "the most cited paper on {topic} reports a 12% efficiency gain",
    "adoption of {topic} is fastest where regulation is simplest",
    "open data sets on {topic} are scarce, which slows comparisons",
    "practitioners say {topic} fails most often at hand-offs between teams",
)
_OPENINGS = (
    "{Topic} is easier to get right than its reputation suggests.",
    "Most discussions of {topic} start in the wrong place.",
    "{Topic} rewards patience more than cleverness.",
    "Here is what the evidence on {topic} actually says.",
)
_CLOSINGS = (
    "The practical advice: start small, measure, and only then scale.",
    "In short, {topic} is promising where the basics are already in place.",
    "The open question is cost, and that is where the next study should look.",
)
_SUGGESTIONS = (
    "add a concrete example",
    "cite the survey numbers",
    "tighten the opening sentence",
    "explain the main risk in one line",
    "cut the second paragraph by half",
)
_PLAN_STEPS = (
    "collect sources on {topic}",
    "list the open questions",
    "compare the strongest two positions",
    "draft a one-page answer",
    "check every number against a source",
)


def normalize_messages(messages: Any) -> list[Message]:
    """``(role, content)`` pairs from whatever a caller passes as a prompt.

    Accepts a string (one user message), a list of strings, of ``(role, content)`` pairs, of
    ``{"role": ..., "content": ...}`` dicts, or of objects with ``.role``/``.type`` and
    ``.content`` attributes (LangChain-style messages).

    Example:
        >>> normalize_messages([("system", "be brief"), "hello"])
        [('system', 'be brief'), ('user', 'hello')]
    """
    if isinstance(messages, str):
        return [("user", messages)]
    if isinstance(messages, Mapping):
        messages = [messages]
    out: list[Message] = []
    for m in messages:
        if isinstance(m, str):
            out.append(("user", m))
        elif isinstance(m, Mapping):
            out.append((str(m.get("role", "user")), str(m.get("content", ""))))
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            out.append((str(m[0]), str(m[1])))
        elif hasattr(m, "content"):
            role = getattr(m, "role", None) or getattr(m, "type", None) or "user"
            out.append((str(role), str(m.content)))
        else:
            raise TypeError(
                f"FakeChatModel: cannot read message {m!r}; pass a string, (role, content) pairs "
                "or {'role': ..., 'content': ...} dicts"
            )
    return out


def _digest(text: str, seed: int) -> int:
    from hashlib import blake2b

    return int.from_bytes(blake2b(f"{seed}|{text}".encode(), digest_size=8).digest(), "big")


_QUESTION_WORDS = frozenset({"what", "why", "how", "who", "when", "where", "which"})
_AUX_WORDS = frozenset({"is", "are", "was", "were", "does", "do", "did", "can", "could", "should", "will"})


def _topic(text: str) -> str:
    """A short topic phrase from a prompt: the text after the first colon (or the whole first
    line) up to the next punctuation, without a leading question ("why is ..."), at most eight
    words."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    _, colon, rest = line.partition(":")
    phrase = rest.strip() if colon and rest.strip() else line
    for stop in ",;:(":
        phrase = phrase.split(stop, 1)[0]
    words = phrase.split()
    if len(words) > 2 and words[0].lower() in _QUESTION_WORDS and words[1].lower() in _AUX_WORDS:
        words = words[2:]
    return " ".join(words[:8]).rstrip(".?!,;:") or "the question"


def _role(text: str) -> str:
    low = text.lower()
    best, best_at = "answer", len(low) + 1
    for role, words in _ROLES:
        for w in words:
            at = low.find(w)
            if 0 <= at < best_at:
                best, best_at = role, at
    return best


class FakeChatModel:
    """A chat model for examples and tests: deterministic, offline, instant (or as slow as asked).

    Args:
        responses: what to answer.

            * ``None`` (default): generate plausible text from the prompt. The role is the first
              role keyword in the last message ("research", "write"/"draft",
              "critique"/"review", "plan", "summarize"); the topic is the text after the first
              colon. The words are picked with a hash of the whole conversation and ``seed``, so
              the same prompt gives the same answer.
            * a list of strings: answered in order, one per call, cycling.
            * a dict ``{keyword: str | list[str]}``: the first keyword (case-insensitive) found
              in the last message picks the answer; a list is answered in order, cycling per
              keyword. Unmatched prompts fall back to the generator (or to the ``"*"`` entry).
            * a callable ``messages -> str``, given ``(role, content)`` pairs.
        seed: changes the generated text (and nothing else).
        latency: seconds each call takes (``time.sleep`` in :meth:`invoke`, ``asyncio.sleep``
            in :meth:`ainvoke`), to make timelines and timeouts visible.
        fail_every: every ``n``-th call (``n``, ``2n``, ...) raises ``ConnectionError``, as a
            flaky network would; a node with a ``RetryPolicy`` recovers from it.
        fail_first: the first ``k`` calls raise ``ConnectionError`` (a service that is down
            for a while, then recovers).
        name: shown in the repr and in error messages.

    Attributes:
        calls: how many calls were made (failed ones included).
        prompts: the messages of every call, as ``(role, content)`` lists (kept until
            :meth:`reset`).

    Example:
        >>> llm = FakeChatModel({"critique": ["REVISE: add numbers", "APPROVE: ship it"]})
        >>> llm.invoke("Critique this draft: ...")
        'REVISE: add numbers'
        >>> llm.invoke("Critique this draft: ...")
        'APPROVE: ship it'
    """

    def __init__(
        self,
        responses: Sequence[str] | Mapping[str, str | Sequence[str]] | Callable[[list[Message]], str] | None = None,
        *,
        seed: int = 0,
        latency: float = 0.0,
        fail_every: int | None = None,
        fail_first: int = 0,
        name: str = "fake-chat",
    ) -> None:
        if isinstance(responses, str):
            responses = [responses]
        if isinstance(responses, Sequence) and not responses:
            raise ValueError("FakeChatModel: responses is an empty list; pass None to generate text")
        if fail_every is not None and (not isinstance(fail_every, int) or fail_every < 1):
            raise ValueError(f"FakeChatModel: fail_every must be an int >= 1, got {fail_every!r}")
        if not isinstance(fail_first, int) or fail_first < 0:
            raise ValueError(f"FakeChatModel: fail_first must be an int >= 0, got {fail_first!r}")
        if not isinstance(latency, (int, float)) or latency < 0:
            raise ValueError(f"FakeChatModel: latency must be a number of seconds >= 0, got {latency!r}")
        self.responses = responses
        self.seed = seed
        self.latency = float(latency)
        self.fail_every = fail_every
        self.fail_first = fail_first
        self.name = name
        self.calls = 0
        self.prompts: list[list[Message]] = []
        self._per_key: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- calling ------------------------------------------------------------------------------------
    def invoke(self, messages: Any) -> str:
        """Answer ``messages`` (a string or a list of messages; see :func:`normalize_messages`).

        Raises:
            ConnectionError: on the calls chosen by ``fail_every`` / ``fail_first``.
        """
        answer = self._answer(messages)
        if self.latency:
            import time

            time.sleep(self.latency)
        return self._deliver(answer)

    async def ainvoke(self, messages: Any) -> str:
        """Async :meth:`invoke` (sleeps with ``asyncio.sleep``, so other nodes run meanwhile)."""
        answer = self._answer(messages)
        if self.latency:
            import asyncio

            await asyncio.sleep(self.latency)
        return self._deliver(answer)

    __call__ = invoke

    def reset(self) -> None:
        """Forget the calls so far (scripted answers and failures start over)."""
        with self._lock:
            self.calls = 0
            self.prompts.clear()
            self._per_key.clear()

    # -- internals ----------------------------------------------------------------------------------
    def _answer(self, messages: Any) -> str | BaseException:
        """The answer to this call, or the error to raise (after the simulated latency)."""
        msgs = normalize_messages(messages)
        with self._lock:  # parallel nodes share a model: count calls exactly
            self.calls += 1
            n = self.calls
            self.prompts.append(msgs)
            if n <= self.fail_first or (self.fail_every is not None and n % self.fail_every == 0):
                return ConnectionError(f"{self.name}: simulated connection failure on call {n}")
            return self._pick(msgs)

    @staticmethod
    def _deliver(answer: str | BaseException) -> str:
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _next(self, key: str, options: str | Sequence[str]) -> str:
        if isinstance(options, str):
            return options
        i = self._per_key.get(key, 0)
        self._per_key[key] = i + 1
        return str(options[i % len(options)])

    def _pick(self, msgs: list[Message]) -> str:
        r = self.responses
        if r is None:
            return self.generate(msgs)
        if callable(r) and not isinstance(r, (Mapping, Sequence)):
            return str(r(msgs))
        if isinstance(r, Mapping):
            last = msgs[-1][1].lower() if msgs else ""
            for key, options in r.items():
                if key != "*" and key.lower() in last:
                    return self._next(key, options)
            if "*" in r:
                return self._next("*", r["*"])
            return self.generate(msgs)
        return self._next("", r)

    def generate(self, messages: Any) -> str:
        """The built-in text generator (what ``responses=None`` answers), without counting a
        call or injecting failures."""
        import random

        msgs = normalize_messages(messages)
        last = msgs[-1][1] if msgs else ""
        role = _role(last)
        topic = _topic(last)
        conversation = "\n".join(f"{r}: {c}" for r, c in msgs)
        rng = random.Random(_digest(conversation, self.seed))
        t = {"topic": topic, "Topic": topic[:1].upper() + topic[1:]}
        if role == "research":
            facts = rng.sample(_FACTS, 3)
            return "Findings on {topic}:\n".format(**t) + "\n".join(
                f"{i}. {f.format(**t)}" for i, f in enumerate(facts, 1)
            )
        if role == "write":
            body = rng.choice(_OPENINGS).format(**t)
            fact = rng.choice(_FACTS).format(**t)
            return f"{body} Notably, {fact}. {rng.choice(_CLOSINGS).format(**t)}"
        if role == "critique":
            score = rng.randint(4, 9)
            verdict = "APPROVE" if score >= 7 else "REVISE"
            return f"{verdict} (score {score}/10): {rng.choice(_SUGGESTIONS)}."
        if role == "plan":
            steps = rng.sample(_PLAN_STEPS, 3)
            return "Plan:\n" + "\n".join(f"{i}. {s.format(**t)}" for i, s in enumerate(steps, 1))
        if role == "summarize":
            return f"Summary: {rng.choice(_FACTS).format(**t)}."
        return f"About {topic}: {rng.choice(_FACTS).format(**t)}."

    def __repr__(self) -> str:
        extra = []
        if self.latency:
            extra.append(f"latency={self.latency}")
        if self.fail_every:
            extra.append(f"fail_every={self.fail_every}")
        if self.fail_first:
            extra.append(f"fail_first={self.fail_first}")
        opts = (", " + ", ".join(extra)) if extra else ""
        return f"FakeChatModel({self.name!r}, seed={self.seed}{opts}, calls={self.calls})"


def fake_search(query: str, k: int = 3, *, seed: int = 0) -> list[str]:
    """``k`` made-up but stable search results for ``query`` (titles with fake URLs).

    Example:
        >>> fake_search("tidal power", k=1)[0].startswith("https://example.org/")
        True
    """
    import random

    rng = random.Random(_digest(query, seed))
    words = ("".join(c if c.isalnum() else " " for c in query.lower())).split()
    slug = "-".join(words)[:40].strip("-") or "q"
    kinds = ("survey", "case-study", "faq", "dataset", "review", "news", "primer", "report")
    picks = rng.sample(kinds, min(k, len(kinds))) + [f"page-{i}" for i in range(max(0, k - len(kinds)))]
    return [f"https://example.org/{slug}/{p}" for p in picks]


class Flaky(Protocol):
    """What :func:`flaky` returns: the wrapped callable, with its call count."""

    calls: int
    __name__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def reset(self) -> None:
        """Start the call count (and so the failures) over."""


def flaky(
    fn: Callable[..., Any],
    *,
    fail_every: int | None = None,
    fail_first: int = 0,
    exc: Callable[[str], BaseException] = ConnectionError,
) -> Flaky:
    """Wrap a node so some of its calls fail (deterministically, by call count).

    The wrapper keeps ``fn``'s name (so the graph shows the same node) and counts its calls in
    ``wrapper.calls``; ``wrapper.reset()`` starts the count over. Works for sync and async ``fn``.

    Example:
        >>> search = flaky(search, fail_first=2)      # doctest: +SKIP
        >>> g.add_node("search", search, retry=RetryPolicy(max_attempts=3))  # doctest: +SKIP
    """
    import functools
    import inspect

    if fail_every is not None and (not isinstance(fail_every, int) or fail_every < 1):
        raise ValueError(f"flaky: fail_every must be an int >= 1, got {fail_every!r}")
    lock = threading.Lock()
    name = getattr(fn, "__name__", "node")

    def check() -> None:
        with lock:
            wrapper.calls += 1  # type: ignore[attr-defined]
            n = wrapper.calls  # type: ignore[attr-defined]
        if n <= fail_first or (fail_every is not None and n % fail_every == 0):
            raise exc(f"{name}: simulated failure on call {n}")

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            check()
            return await fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            check()
            return fn(*args, **kwargs)

    def reset() -> None:
        with lock:
            wrapper.calls = 0  # type: ignore[attr-defined]

    wrapper.calls = 0  # type: ignore[attr-defined]
    wrapper.reset = reset  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


# -- a chat model that follows a script ----------------------------------------------------------------
def tool_call(name: str, args: Mapping[str, Any] | str | None = None, id: str | None = None) -> dict[str, Any]:
    """One tool call in the OpenAI format, for scripting a model's answer.

    Args:
        name: the tool to call.
        args: its arguments (a dict, or JSON text, which is sent as it is, broken or not).
        id: the call's id (default ``call_<name>``).

    Example:
        >>> tool_call("weather", {"city": "Oslo"}, id="c1")
        {'id': 'c1', 'type': 'function', 'function': {'name': 'weather', 'arguments': '{"city": "Oslo"}'}}
    """
    import json

    text = args if isinstance(args, str) else json.dumps(dict(args or {}))
    return {"id": id or f"call_{name}", "type": "function", "function": {"name": name, "arguments": text}}


class ScriptedChatModel:
    """A chat model that answers with the messages it was given, in order, and records what it
    was sent: for testing agents without a model server.

    It follows the chat-model protocol of agentgraph_nb: ``invoke(messages)`` / ``ainvoke``
    return one assistant message dict; :meth:`bind_tools` returns a model offering tools (reading
    each tool's ``.schema``); :meth:`with_structured_output` returns a runnable whose ``invoke``
    returns a pydantic model instance. Copies made by ``bind_tools`` share the script and the
    records with the model they came from.

    Args:
        script: one entry per call: an assistant message dict, a string (its content), a list
            of tool calls (see :func:`tool_call`), an exception (raised by that call), or a
            callable ``messages -> entry``.
        latency: seconds each call takes (``time.sleep`` / ``asyncio.sleep``).
        name: shown in the repr and in errors.

    Attributes:
        calls: the messages sent with each call (copies), in call order.
        tools_seen: the tool schemas bound at each call.

    Example:
        >>> model = ScriptedChatModel([[tool_call("weather", {"city": "Oslo"})], "It is sunny."])
        >>> model.invoke([{"role": "user", "content": "weather?"}])["tool_calls"][0]["function"]["name"]
        'weather'
        >>> model.invoke([])["content"]
        'It is sunny.'
    """

    def __init__(self, script: Sequence[Any], *, latency: float = 0.0, name: str = "scripted") -> None:
        self.script = list(script)
        self.latency = float(latency)
        self.name = name
        self.calls: list[list[dict[str, Any]]] = []
        self.tools_seen: list[list[dict[str, Any]]] = []
        self.tools: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._shared = self  # whose script and records a bound copy uses

    # -- the protocol -------------------------------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """A copy that offers ``tools`` (each a tool with ``.schema``, or a schema dict)."""
        bound = ScriptedChatModel.__new__(ScriptedChatModel)
        bound.__dict__.update(self.__dict__)
        bound.tools = [t if isinstance(t, dict) else t.schema for t in tools]
        return bound

    def with_structured_output(self, schema: Any, **kwargs: Any) -> _Structured:
        """A runnable whose ``invoke(messages)`` returns a ``schema`` instance made from the next
        script entry (a dict, JSON text, or an instance)."""
        return _Structured(self, schema)

    def invoke(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        """The next scripted answer, as an assistant message."""
        entry = self._next(messages)
        if self.latency:
            import time

            time.sleep(self.latency)
        return self._answer(entry)

    async def ainvoke(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        """Async :meth:`invoke`."""
        entry = self._next(messages)
        if self.latency:
            import asyncio

            await asyncio.sleep(self.latency)
        return self._answer(entry)

    # -- internals ----------------------------------------------------------------------------------
    def _next(self, messages: Any) -> Any:
        import copy

        from agentgraph_nb.messages import convert_messages

        sent = copy.deepcopy([m for m in convert_messages(messages) if isinstance(m, dict)])
        shared = self._shared
        with shared._lock:
            n = len(shared.calls)
            shared.calls.append(sent)
            shared.tools_seen.append(list(self.tools))
            if n >= len(shared.script):
                raise AssertionError(
                    f"ScriptedChatModel {shared.name!r}: call {n + 1} but the script has only {len(shared.script)} "
                    f"answers; the last message sent was {sent[-1] if sent else None!r}"
                )
            entry = shared.script[n]
        if callable(entry) and not isinstance(entry, type):
            entry = entry(sent)
        return entry

    @staticmethod
    def _answer(entry: Any) -> dict[str, Any]:
        import copy
        import uuid

        if isinstance(entry, BaseException):
            raise entry
        if isinstance(entry, str):
            msg: dict[str, Any] = {"role": "assistant", "content": entry}
        elif isinstance(entry, list):
            msg = {"role": "assistant", "content": None, "tool_calls": copy.deepcopy(entry)}
        elif isinstance(entry, Mapping):
            msg = {"role": "assistant", "content": None, **copy.deepcopy(dict(entry))}
        else:
            raise TypeError(f"ScriptedChatModel: cannot answer with {type(entry).__name__} {entry!r}")
        msg.setdefault("id", f"msg-{uuid.uuid4().hex[:12]}")
        return msg

    @property
    def call_count(self) -> int:
        """How many calls were made (by this model and the copies ``bind_tools`` made)."""
        return len(self._shared.calls)

    def __repr__(self) -> str:
        return f"ScriptedChatModel({self.name!r}, {self.call_count}/{len(self.script)} answers used)"


class _Structured:
    """What :meth:`ScriptedChatModel.with_structured_output` returns."""

    def __init__(self, model: ScriptedChatModel, schema: Any) -> None:
        self.model = model
        self.schema = schema

    def _parse(self, entry: Any) -> Any:
        import json

        if isinstance(entry, BaseException):
            raise entry
        if isinstance(self.schema, type) and isinstance(entry, self.schema):
            return entry
        if isinstance(entry, Mapping) and entry.get("role") == "assistant":
            entry = entry.get("content")
        if isinstance(entry, str):
            entry = json.loads(entry)
        validate = getattr(self.schema, "model_validate", None)
        return validate(entry) if validate is not None else entry

    def invoke(self, messages: Any, **kwargs: Any) -> Any:
        return self._parse(self.model._next(messages))

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Any:
        return self._parse(self.model._next(messages))


def postgres_server(*, durable: bool = False) -> Any:
    """Start a throwaway PostgreSQL server on a free loopback port, in a temp dir, from the
    machine's PostgreSQL binaries (Debian: ``apt-get install -y postgresql``; as root it runs as
    the ``postgres`` user). For tutorials and tests: its data goes when it is closed.

    Args:
        durable: keep ``fsync`` on (for benchmarks); off by default, which is faster and fine
            for data that is thrown away.

    Returns:
        The server: ``.url`` (``postgresql://postgres:...@127.0.0.1:PORT/postgres``), ``.stop()``
        and ``.start()`` (same URL), ``.close()`` (stop and delete its files). A context
        manager too.

    Raises:
        ServerUnavailableError: PostgreSQL is not installed, or did not start (the message says
            why).

    Example:
        >>> with postgres_server() as pg:                      # doctest: +SKIP
        ...     app = graph.compile(checkpointer=pg.url)
    """
    from agentgraph_nb._servers import PostgresServer

    return _closed_at_exit(PostgresServer(durable=durable))


def redis_server(*, persistent: bool = False) -> Any:
    """Start a throwaway redis-server on a free loopback port (Debian: ``apt-get install -y
    redis-server``). ``persistent=True`` keeps an append-only file synced at every write, so a
    restart (``.stop()``, ``.start()``) keeps the data. Otherwise as :func:`postgres_server`.

    Example:
        >>> with redis_server() as r:                          # doctest: +SKIP
        ...     app = graph.compile(checkpointer=r.url)
    """
    from agentgraph_nb._servers import RedisServer

    return _closed_at_exit(RedisServer(persistent=persistent))


def _closed_at_exit(server: Any) -> Any:
    import atexit
    import weakref

    ref = weakref.ref(server)

    def close() -> None:
        s = ref()
        if s is not None:
            s.close()

    atexit.register(close)  # a kernel that exits without closing it leaves no server behind
    return server
