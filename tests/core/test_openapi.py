"""carme against its own OpenAPI description (core/api/spec.yaml, served at /api/spec.yaml).

- Every HTTP route of the core is in the spec with exactly its methods, and every path in the spec
  is served (the routes left out are named below, with why).
- Property-based: for each operation, hypothesis generates requests from the spec (path and query
  parameters, JSON bodies from the schemas, plus ids and paths that exist) and carme's answer must
  have a documented status code, the documented content type, and a body valid against the
  documented schema. Bodies that violate the schema (a field of the wrong JSON type, a body that
  is not an object) must be refused with a 4xx.
- A method a path does not document is 405 with an ``Allow`` header listing exactly the
  documented ones (HEAD with GET, and OPTIONS); OPTIONS answers 204 with the same header.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from carme.methods import allow_header
from tests.serving import Served, serve_isolated

METHODS = ("get", "put", "post", "patch", "delete")
# Core routes the spec leaves out, as jupyter_server's does: not REST resources.
UNDOCUMENTED = {
    "/api/notebooks", "/api/notebooks/{}",  # deprecated name of /api/contents: a redirect
    "/files/{}",  # raw file bytes
    "/kernelspecs/{}/{}",  # kernelspec resources (logos)
    "/login", "/logout",  # pages
}
# Operations the generated requests leave alone: POST /api/shutdown would stop the server under
# the test (tests/core/test_server_api.py covers it).
NOT_GENERATED = {("post", "/api/shutdown")}
# Operations that start kernels: fewer examples (each start is a real ipykernel).
KERNEL_STARTING = {("post", "/api/kernels"), ("post", "/api/sessions"), ("patch", "/api/sessions/{session}"),
                   ("post", "/api/kernels/{kernel_id}/restart")}
FILES = ["a.txt", "n.ipynb", "dir", "dir/b.txt", "missing.txt", "dir/missing"]
NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def load_spec() -> dict[str, Any]:
    from importlib.resources import files

    return yaml.safe_load(files("carme.api").joinpath("spec.yaml").read_text())  # type: ignore[no-any-return]


SPEC = load_spec()


def resolve(node: Any, spec: dict[str, Any] = SPEC) -> Any:
    """The node with every ``$ref`` inlined."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(target, spec)
        return {key: resolve(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, spec) for item in node]
    return node


def json_schema(node: Any) -> Any:
    """A resolved Swagger 2.0 schema as JSON Schema: ``x-nullable`` becomes "or null"."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: json_schema(value) if key in ("properties", "additionalProperties", "items", "allOf")
           else value for key, value in node.items() if not key.startswith("x-")}
    if "properties" in out:
        out["properties"] = {name: json_schema(sub) for name, sub in node["properties"].items()}
    if node.get("x-nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against the JSON schemas of this spec (the subset it uses: type, enum, format
    uuid, properties/required, additionalProperties, items, anyOf, allOf of one)."""
    if "anyOf" in schema:
        return st.one_of(*(from_schema(sub) for sub in schema["anyOf"]))
    if "allOf" in schema:
        assert len(schema["allOf"]) == 1, "only one-part allOf is generated"
        return from_schema(schema["allOf"][0])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.uuids().map(str) if schema.get("format") == "uuid" else st.text(max_size=20)
    if kind == "integer":
        return st.integers(-3, 3)
    if kind == "number":
        return st.one_of(st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        extra = schema.get("additionalProperties", {})
        fixed = st.fixed_dictionaries({k: from_schema(v) for k, v in properties.items() if k in required},
                                      optional={k: from_schema(v) for k, v in properties.items() if k not in required})
        if extra is False or properties:
            return fixed
        return st.dictionaries(st.text(max_size=8), from_schema(extra if isinstance(extra, dict) else {}), max_size=3)
    return ANY_JSON


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the spec's template
    spec: dict[str, Any]  # resolved, path-level parameters included

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return self.spec.get("parameters", [])

    def body_schema(self) -> tuple[dict[str, Any], bool] | None:
        for param in self.parameters:
            if param["in"] == "body":
                return json_schema(param["schema"]), bool(param.get("required"))
        return None


def operations() -> list[Operation]:
    found = []
    for path, item in resolve(SPEC["paths"]).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                op = dict(item[method])
                op["parameters"] = shared + op.get("parameters", [])
                found.append(Operation(method, path, op))
    return found


OPERATIONS = operations()


def template(path: str) -> str:
    """A path template with its parameter names dropped: ``/api/kernels/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_isolated(tmp_path_factory.mktemp("openapi")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Served) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


class World:
    """The served root and the running kernels and sessions the generated requests pick from;
    put back as it was before each example (what an example created is removed)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.kernels: list[str] = []
        self.sessions: list[str] = []

    def reset(self, with_kernel: bool) -> None:
        c = self.client
        for name, body in (("dir", {"type": "directory"}), ("a.txt", {"type": "file", "format": "text", "content": "a"}),
                           ("dir/b.txt", {"type": "file", "format": "text", "content": "b"}),
                           ("n.ipynb", {"type": "notebook", "content": NOTEBOOK})):
            assert c.put(f"/api/contents/{name}", json=body).status_code in (200, 201)
        self.sessions = [s["id"] for s in c.get("/api/sessions").json()]
        self.kernels = [k["id"] for k in c.get("/api/kernels").json()]
        if with_kernel and not self.sessions:
            created = c.post("/api/sessions", json={"path": "n.ipynb", "type": "notebook"})
            assert created.status_code == 201, created.text
            self.sessions = [created.json()["id"]]
            self.kernels = [created.json()["kernel"]["id"]]

    def clean(self) -> None:
        """Remove the sessions and kernels an example made beyond the first of each."""
        c = self.client
        for session in c.get("/api/sessions").json()[1:]:
            c.delete(f"/api/sessions/{session['id']}")
        for kernel in c.get("/api/kernels").json():
            if kernel["id"] not in {s["kernel"]["id"] for s in c.get("/api/sessions").json() if s["kernel"]}:
                c.delete(f"/api/kernels/{kernel['id']}")


def encoded(text: str) -> str:
    """A generated path segment sent as is: every character escaped, dots too (a client would
    resolve ``..`` away before sending)."""
    return quote(text, safe="").replace(".", "%2E")


def path_value(world: World, name: str) -> st.SearchStrategy[str]:
    anything = st.text(min_size=1, max_size=20).map(encoded)
    known: list[str] = {
        "path": FILES,
        "kernel_id": world.kernels,
        "session": world.sessions,
        "checkpoint_id": ["checkpoint"],
        "kernel_name": ["python3"],
        "name": ["watch", "lab"],
    }.get(name, [])
    uuids = st.uuids().map(str)
    choices = [anything, uuids] if name in ("kernel_id", "session") else [anything]
    if known:
        choices.insert(0, st.sampled_from(known))
    return st.one_of(*choices)


def query_value(param: dict[str, Any]) -> st.SearchStrategy[str | None]:
    if "enum" in param:
        values = st.sampled_from([str(v) for v in param["enum"]])
    elif param["name"] == "permissions":
        values = st.one_of(st.text(max_size=20), st.dictionaries(
            st.sampled_from(["contents", "kernels", "sessions", "server"]),
            st.lists(st.sampled_from(["read", "write", "execute"]))).map(json.dumps))
    else:
        values = st.text(max_size=20)
    return st.one_of(st.none(), values, st.text(max_size=10)) if not param.get("required") else values


@st.composite
def requests(draw: st.DrawFn, op: Operation, world: World, valid_body: bool = True) -> dict[str, Any]:
    url = op.path
    query: dict[str, str] = {}
    for param in op.parameters:
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", draw(path_value(world, param["name"])))
        elif param["in"] == "query":
            value = draw(query_value(param))
            if value is not None:
                query[param["name"]] = value
    request: dict[str, Any] = {"method": op.method.upper(), "url": url, "params": query}
    body = op.body_schema()
    if body is not None:
        schema, required = body
        if valid_body:
            if required or draw(st.booleans()):
                request["json"] = draw(from_schema(schema))
        else:
            request["json"] = draw(violating(schema))
    return request


JSON_TYPES = {"string": st.text(max_size=5), "integer": st.integers(), "boolean": st.booleans(),
              "object": st.just({}), "array": st.just([1])}


@st.composite
def violating(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A body that breaks ``schema``: not an object, or one typed field of another JSON type."""
    typed = {name: sub["type"] for name, sub in schema.get("properties", {}).items()
             if isinstance(sub, dict) and isinstance(sub.get("type"), str)}
    if not typed or draw(st.booleans()):
        return draw(st.sampled_from([[], "text", 3, [{"path": "a.txt"}]]))
    valid = draw(from_schema(schema))
    name = draw(st.sampled_from(sorted(typed)))
    wrong = [kind for kind in JSON_TYPES if kind != typed[name] and not (typed[name] == "number" and kind == "integer")]
    valid[name] = draw(JSON_TYPES[draw(st.sampled_from(wrong))])
    return valid


def check_response(op: Operation, response: httpx.Response) -> None:
    """The answer is documented: its status, content type, headers and body schema."""
    documented = op.spec["responses"]
    assert response.status_code in documented, (
        f"{op.id}: status {response.status_code} is not documented ({sorted(documented)}): {response.text[:300]}")
    doc = documented[response.status_code]
    schema = doc.get("schema")
    content_type = response.headers.get("content-type", "")
    if schema is None:
        assert response.content == b"", f"{op.id}: {response.status_code} has a body: {response.text[:200]}"
        return
    if schema.get("type") == "file":
        produces = op.spec.get("produces", SPEC["produces"])
        assert content_type.split(";")[0] in produces, f"{op.id}: content type {content_type}"
        return
    assert content_type.split(";")[0] == "application/json", f"{op.id}: content type {content_type!r}"
    for header in doc.get("headers", {}):
        if header == "Location" or response.status_code < 300:
            assert header in response.headers, f"{op.id}: {response.status_code} lacks its {header} header"
    errors = sorted(jsonschema.Draft7Validator(json_schema(schema)).iter_errors(response.json()), key=str)
    assert not errors, f"{op.id}: {response.status_code} body does not match the spec: {errors[0]}"


def example_count(op: Operation) -> int:
    return 6 if (op.method, op.path) in KERNEL_STARTING else 25


GENERATED = [op for op in OPERATIONS if (op.method, op.path) not in NOT_GENERATED]


def run_examples(op: Operation, client: httpx.Client, valid_body: bool) -> None:
    world = World(client)
    needs_kernel = any(p["name"] in ("kernel_id", "session") for p in op.parameters)

    @settings(max_examples=example_count(op), deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def examples(data: st.DataObject) -> None:
        world.reset(with_kernel=needs_kernel)
        request = data.draw(requests(op, world, valid_body))
        try:
            response = client.request(**request)
            if valid_body:
                check_response(op, response)
            else:
                assert 400 <= response.status_code < 500, (
                    f"{op.id} accepted a body that breaks the spec ({request.get('json')!r}): "
                    f"{response.status_code} {response.text[:200]}")
        finally:
            world.clean()

    examples()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("op", GENERATED, ids=lambda op: op.id)
def test_generated_requests_get_documented_answers(op: Operation, client: httpx.Client) -> None:
    run_examples(op, client, valid_body=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("op", [op for op in GENERATED if op.body_schema() is not None], ids=lambda op: op.id)
def test_bodies_that_break_the_spec_are_refused(op: Operation, client: httpx.Client) -> None:
    run_examples(op, client, valid_body=False)


def test_spec_is_served_as_yaml(client: httpx.Client) -> None:
    response = client.get("/api/spec.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-yaml")
    assert yaml.safe_load(response.text) == SPEC
    assert SPEC["swagger"] == "2.0"


def test_every_core_route_is_documented_with_its_methods(server: Served) -> None:
    served: dict[str, set[str]] = {}
    for route in server.app.routes:
        if isinstance(route, Route):
            served.setdefault(template(route.path.replace(":path", "")), set()).update(route.methods or ())
    documented = {template(path): {m.upper() for m in item if m in METHODS} for path, item in SPEC["paths"].items()}
    assert set(served) - UNDOCUMENTED == set(documented), "routes and spec paths differ"
    for path, methods in documented.items():
        assert served[path] - {"HEAD"} == methods, f"{path}: served {sorted(served[path])}, documented {sorted(methods)}"


@pytest.mark.parametrize("path", sorted(SPEC["paths"]), ids=str)
def test_undocumented_methods_are_405_with_exact_allow(path: str, client: httpx.Client) -> None:
    documented = {m.upper() for m in SPEC["paths"][path] if m in METHODS}
    allow = allow_header(documented | ({"HEAD"} if "GET" in documented else set()))
    url = path.format_map(_Filler())
    options = client.options(url)
    assert (options.status_code, options.headers.get("allow")) == (204, allow)
    for method in {m.upper() for m in METHODS} - documented:
        response = client.request(method, url)
        assert response.status_code == 405, f"{method} {url}: {response.status_code} {response.text[:200]}"
        assert response.headers["allow"] == allow
        assert response.json()["reason"] == "Method Not Allowed"


class _Filler(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return {"path": "a.txt", "checkpoint_id": "checkpoint"}.get(key, "00000000-0000-0000-0000-000000000000")


def test_spec_resolves() -> None:
    """Every $ref of the spec points somewhere (resolve raises KeyError otherwise)."""
    assert copy.deepcopy(resolve(SPEC["paths"]))
