"""Utility nodes: validate a value, compute one (a function or a small safe expression), render
a jinja2 template. Extra ``util`` (jinja2 for :func:`template`, jsonschema for JSON schemas).

Example:
    >>> from agentgraph_nb.nodes.util import transform
    >>> transform("price * quantity if quantity > 0 else 0", into="total")({"price": 2.5, "quantity": 4})
    {'total': 10.0}

Expressions are parsed once with :mod:`ast` and evaluated by a small interpreter that knows only
a whitelist: literals, state keys (``user.name`` reads the key ``name`` of the dict ``user``;
no attribute of any object is ever read), arithmetic, comparisons, ``and``/``or``/``not``,
``x if c else y``, subscripts and slices, list/tuple/dict literals, comprehensions, and the
functions ``len min max sum abs round sorted any all str int float bool list lower upper strip
split join get``. No ``eval``, no imports, no method calls, no dunders: a mistake is a
:class:`~agentgraph_nb.errors.NodeValueError` naming the node and the key.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from agentgraph_nb.errors import NodeValueError
from agentgraph_nb.nodes._base import LibraryNode, get_path, node_name

__all__ = ["Expression", "TemplateNode", "TransformNode", "ValidateNode", "template", "transform", "validate"]


# -- validate -------------------------------------------------------------------------------------


class ValidateNode(LibraryNode):
    """A node that checks a value against a pydantic model or a JSON schema; see :func:`validate`."""

    kind = "validate"

    def __init__(self, schema: Any, *, key: str | None, into: str | None, name: str | None) -> None:
        super().__init__(name)
        self.key = key
        self.into = into
        self.schema = schema
        if hasattr(schema, "model_validate"):
            self._pydantic = True
            self._validator = None
        elif isinstance(schema, Mapping):
            from jsonschema import validators
            from jsonschema.exceptions import SchemaError

            cls = validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"validate: the JSON schema itself is invalid: {exc.message}") from None
            self._pydantic = False
            self._validator = cls(schema)
        else:
            raise TypeError(f"validate: give a pydantic model class or a JSON schema (a dict), got {type(schema).__name__}")

    def __call__(self, state: Any) -> dict[str, Any] | None:
        value = get_path(state, self.key, who=self.who) if self.key else state
        where = f"state key {self.key!r}" if self.key else "the state"
        if self._pydantic:
            try:
                model = self.schema.model_validate(value)
            except Exception as exc:  # pydantic.ValidationError, without importing pydantic
                errors = getattr(exc, "errors", None)
                detail = (
                    "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or '(root)'}: {e.get('msg')}" for e in errors())
                    if callable(errors) else str(exc)
                )
                raise self._fail(where, f"does not match {self.schema.__name__}: {detail}") from exc
            return None if self.into is None else {self.into: model.model_dump()}
        assert self._validator is not None
        if isinstance(value, Mapping) and not isinstance(value, dict):
            value = dict(value)
        errs = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errs:
            parts = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errs[:5]]
            more = f" (+{len(errs) - 5} more)" if len(errs) > 5 else ""
            raise self._fail(where, "does not match the JSON schema: " + "; ".join(parts) + more)
        return None if self.into is None else {self.into: value}

    def _fail(self, where: str, what: str) -> NodeValueError:
        name = node_name(self.who)
        key = self.key or "(state)"
        return NodeValueError(f"node {name!r}: {where} {what}", node=name, resource=key, key=key)


def validate(schema: Any, *, key: str | None = None, into: str | None = None, name: str | None = None) -> ValidateNode:
    """A node that checks a state value (``key``; the whole state when None) against a pydantic
    model class or a JSON schema dict, and fails the run with a :class:`NodeValueError` listing
    what does not match.

    Args:
        schema: a pydantic model class, or a JSON schema (any draft jsonschema knows).
        key: the (dotted) state key to check; None for the whole state.
        into: a state key for the validated value (a pydantic model as a dict, defaults applied).
        name: the node's name in errors raised outside a run.

    Example:
        >>> check = validate({"type": "object", "required": ["city"]}, key="request")
    """
    return ValidateNode(schema, key=key, into=into, name=name)


# -- safe expressions -----------------------------------------------------------------------------


def _get(m: Any, key: Any, default: Any = None) -> Any:
    return m.get(key, default) if isinstance(m, Mapping) else default


_FUNCS: dict[str, Callable[..., Any]] = {
    "len": len, "min": min, "max": max, "sum": sum, "abs": abs, "round": round, "sorted": sorted,
    "any": any, "all": all, "str": str, "int": int, "float": float, "bool": bool, "list": list,
    "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(), "strip": lambda s: str(s).strip(),
    "split": lambda s, sep=None: str(s).split(sep), "join": lambda sep, items: str(sep).join(map(str, items)),
    "get": _get,
}
_BIN = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMP = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONSTANTS = {"True": True, "False": False, "None": None}
_MAX_SIZE = 1_000_000  # longest string or list an expression may build (no memory bombs)


class _ExprError(Exception):
    def __init__(self, msg: str, key: str | None = None) -> None:
        super().__init__(msg)
        self.key = key


class Expression:
    """A small, safe expression over the state, parsed once.

    Raises:
        ValueError: at construction, for syntax errors and anything outside the whitelist.

    Example:
        >>> Expression("len(items) > 2 and user.name == 'ada'")({"items": [1, 2, 3], "user": {"name": "ada"}})
        True
    """

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"transform: cannot parse {text!r}: {exc.msg} (column {exc.offset})") from None
        self._check(tree.body)
        self.tree = tree.body

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Constant, ast.Name, ast.Load,
            ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Dict, ast.Call, ast.Attribute, ast.ListComp,
            ast.GeneratorExp, ast.comprehension, ast.Store, ast.And, ast.Or, ast.keyword,
            *_BIN, *_CMP, *_UNARY,
        )
        for sub in ast.walk(node):
            if not isinstance(sub, allowed):
                raise ValueError(f"transform: {type(sub).__name__} is not allowed in an expression ({self.text!r})")
            if isinstance(sub, ast.Call):
                if not isinstance(sub.func, ast.Name) or sub.func.id not in _FUNCS:
                    what = ast.unparse(sub.func)
                    raise ValueError(
                        f"transform: calling {what!r} is not allowed; functions: {', '.join(sorted(_FUNCS))} "
                        f"(or pass a Python function to transform())"
                    )
                if sub.keywords or any(isinstance(a, ast.Starred) for a in sub.args):
                    raise ValueError(f"transform: keyword and * arguments are not allowed ({self.text!r})")
            if isinstance(sub, ast.Attribute) and sub.attr.startswith("_"):
                raise ValueError(f"transform: {sub.attr!r}: names starting with '_' are not allowed")
            if isinstance(sub, ast.Name) and sub.id.startswith("__"):
                raise ValueError(f"transform: {sub.id!r}: names starting with '__' are not allowed")
            if isinstance(sub, ast.comprehension) and (sub.is_async or not isinstance(sub.target, ast.Name)):
                raise ValueError("transform: comprehensions take one plain loop variable")

    def __call__(self, state: Any) -> Any:
        return self._eval(self.tree, state, {})

    def _eval(self, n: ast.AST, state: Any, local: dict[str, Any]) -> Any:
        ev = self._eval
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            if n.id in local:
                return local[n.id]
            if n.id in _CONSTANTS:
                return _CONSTANTS[n.id]
            if isinstance(state, Mapping) and n.id in state:
                return state[n.id]
            if not isinstance(state, Mapping) and hasattr(state, n.id) and not n.id.startswith("_"):
                return getattr(state, n.id)  # a dataclass or pydantic state's field
            if n.id in _FUNCS:
                raise _ExprError(f"{n.id!r} is a function: call it, as in {n.id}(...)")
            raise _ExprError(f"state key {n.id!r} is not in the state", n.id)
        if isinstance(n, ast.Attribute):  # a key of a dict, never an attribute of an object
            obj = ev(n.value, state, local)
            if isinstance(obj, Mapping) and n.attr in obj:
                return obj[n.attr]
            raise _ExprError(f"{ast.unparse(n)!r}: no key {n.attr!r} there", ast.unparse(n))
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left, state, local), ev(n.right, state, local)
            if isinstance(n.op, ast.Pow) and isinstance(b, (int, float)) and abs(b) > 1000:
                raise _ExprError("exponent too large (at most 1000)")
            if isinstance(n.op, ast.Mult):
                for seq, k in ((a, b), (b, a)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(k, int) and len(seq) * k > _MAX_SIZE:
                        raise _ExprError(f"result too large (over {_MAX_SIZE:,} items)")
            return _BIN[type(n.op)](a, b)
        if isinstance(n, ast.UnaryOp):
            return _UNARY[type(n.op)](ev(n.operand, state, local))
        if isinstance(n, ast.BoolOp):
            if isinstance(n.op, ast.And):
                v: Any = True
                for x in n.values:
                    v = ev(x, state, local)
                    if not v:
                        return v
                return v
            v = False
            for x in n.values:
                v = ev(x, state, local)
                if v:
                    return v
            return v
        if isinstance(n, ast.Compare):
            left = ev(n.left, state, local)
            for op, comp in zip(n.ops, n.comparators):
                right = ev(comp, state, local)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.IfExp):
            return ev(n.body, state, local) if ev(n.test, state, local) else ev(n.orelse, state, local)
        if isinstance(n, ast.Subscript):
            obj = ev(n.value, state, local)
            s = n.slice
            if isinstance(s, ast.Slice):
                idx: Any = slice(*(None if p is None else ev(p, state, local) for p in (s.lower, s.upper, s.step)))
            else:
                idx = ev(s, state, local)
            try:
                return obj[idx]
            except (KeyError, IndexError) as exc:
                raise _ExprError(f"{ast.unparse(n)!r}: no item {idx!r} ({type(exc).__name__})", ast.unparse(n)) from None
        if isinstance(n, (ast.List, ast.Tuple)):
            items = [ev(e, state, local) for e in n.elts]
            return items if isinstance(n, ast.List) else tuple(items)
        if isinstance(n, ast.Dict):
            return {ev(k, state, local): ev(v, state, local) for k, v in zip(n.keys, n.values) if k is not None}
        if isinstance(n, ast.Call):
            fn = _FUNCS[n.func.id]  # type: ignore[attr-defined]
            out = fn(*(ev(a, state, local) for a in n.args))
            if isinstance(out, (str, list)) and len(out) > _MAX_SIZE:
                raise _ExprError(f"result too large (over {_MAX_SIZE:,} items)")
            return out
        if isinstance(n, (ast.ListComp, ast.GeneratorExp)):
            return self._comp(n, list(n.generators), state, dict(local))
        raise _ExprError(f"{type(n).__name__} is not allowed")  # pragma: no cover - _check keeps it out

    def _comp(self, n: ast.ListComp | ast.GeneratorExp, gens: list[ast.comprehension], state: Any, local: dict[str, Any]) -> list[Any]:
        out: list[Any] = []

        def loop(i: int) -> None:
            if i == len(gens):
                out.append(self._eval(n.elt, state, local))
                if len(out) > _MAX_SIZE:
                    raise _ExprError(f"result too large (over {_MAX_SIZE:,} items)")
                return
            g = gens[i]
            for item in self._eval(g.iter, state, local):
                local[g.target.id] = item  # type: ignore[attr-defined]
                if all(self._eval(c, state, local) for c in g.ifs):
                    loop(i + 1)

        loop(0)
        return out

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


class TransformNode(LibraryNode):
    """A node that computes a value; see :func:`transform`."""

    kind = "transform"

    def __init__(self, fn: Callable[[Any], Any] | str, *, into: str | None, name: str | None) -> None:
        super().__init__(name)
        if isinstance(fn, str):
            self.fn: Callable[[Any], Any] = Expression(fn)
            if into is None:
                raise ValueError(f"transform({fn!r}): an expression needs into='key' for its value")
        elif callable(fn):
            self.fn = fn
        else:
            raise TypeError(f"transform: give a function or an expression string, got {type(fn).__name__}")
        self.into = into

    def __call__(self, state: Any) -> dict[str, Any] | None:
        try:
            value = self.fn(state)
        except _ExprError as exc:
            name = node_name(self.who)
            key = exc.key or self.into or "(state)"
            raise NodeValueError(
                f"node {name!r}: expression {self.fn.text!r}: {exc}",  # type: ignore[attr-defined]
                node=name, resource=key, key=key,
            ) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            if not isinstance(self.fn, Expression):
                raise
            name = node_name(self.who)
            key = self.into or "(state)"
            raise NodeValueError(
                f"node {name!r}: expression {self.fn.text!r} failed for {key!r}: {type(exc).__name__}: {exc}",
                node=name, resource=key, key=key,
            ) from None
        if self.into is not None:
            return {self.into: value}
        if value is None or isinstance(value, dict):
            return value
        name = node_name(self.who)
        raise NodeValueError(
            f"node {name!r}: the transform returned a {type(value).__name__}, not an update dict; give into='key'",
            node=name, resource="(state)", key=None,
        )


def transform(fn: Callable[[Any], Any] | str, *, into: str | None = None, name: str | None = None) -> TransformNode:
    """A node that computes ``into`` from the state with a function or a safe expression.

    Args:
        fn: ``fn(state) -> value`` (or an update dict when ``into`` is None), or an expression
            string (see the module docs for what it may use).
        into: the state key for the value.
        name: the node's name in errors raised outside a run.

    Example:
        >>> transform("[x['price'] for x in items if x['qty'] > 0]", into="prices")({"items": [{"price": 3, "qty": 1}]})
        {'prices': [3]}
    """
    return TransformNode(fn, into=into, name=name)


# -- template -------------------------------------------------------------------------------------


class TemplateNode(LibraryNode):
    """A node that renders a jinja2 template in a sandbox; see :func:`template`."""

    kind = "template"

    def __init__(self, text: str, *, into: str, name: str | None) -> None:
        super().__init__(name)
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        self._jinja = jinja2
        env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
        try:
            self.template = env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"template: line {exc.lineno}: {exc.message}") from None
        self.text = text
        self.into = into

    def __call__(self, state: Any) -> dict[str, Any]:
        ctx = state if isinstance(state, Mapping) else {k: getattr(state, k) for k in dir(state) if not k.startswith("_")}
        j = self._jinja
        try:
            out = self.template.render(ctx)
        except j.UndefinedError as exc:
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: template for {self.into!r}: {exc.message} (a state key the template uses is missing)",
                node=name, resource=self.into, key=self.into,
            ) from None
        except j.exceptions.SecurityError as exc:
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: template for {self.into!r} tried something the sandbox forbids: {exc}",
                node=name, resource=self.into, key=self.into,
            ) from None
        return {self.into: out}


def template(text: str, *, into: str, name: str | None = None) -> TemplateNode:
    """A node that renders a jinja2 template with the state as its variables, in jinja2's
    sandbox (templates cannot reach Python internals); a variable missing from the state is a
    :class:`NodeValueError`, never an empty string.

    Example:
        >>> template("Dear {{ user.name }}, {{ items | length }} items.", into="letter")(
        ...     {"user": {"name": "Ada"}, "items": [1, 2]})
        {'letter': 'Dear Ada, 2 items.'}
    """
    return TemplateNode(text, into=into, name=name)
