"""A static model of infra/*.tf for the offline checks: parsed blocks and their references.

python-hcl2 parses each file; string literals come back unquoted and expressions as
``${...}``. ``references`` finds every ``root.name`` an expression uses (inside templates,
heredocs and nested strings too), and ``unresolved_references`` lists those that name no
declared resource, data source, variable, local, module or language symbol.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from sluice.settings import REPO_ROOT

INFRA = REPO_ROOT / "infra"
OPTIONS = hcl2.SerializationOptions(
    with_comments=False, strip_string_quotes=True, preserve_heredocs=False, explicit_blocks=False
)
LANGUAGE_ROOTS = frozenset({"each", "count", "path", "self", "terraform"})
_TOKEN = re.compile(
    r"(?<![\w.\-])([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_][\w-]*))?"
)
_FOR_VARS = re.compile(r"\bfor\s+(\w+)(?:\s*,\s*(\w+))?\s+in\b")


@dataclass
class Infra:
    """Every top-level block of a Terraform directory, keyed by its address."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of one type, by name."""
        prefix = resource_type + "."
        return {k[len(prefix) :]: v for k, v in self.resources.items() if k.startswith(prefix)}

    def blocks(self) -> Iterator[tuple[str, Any]]:
        """(address, body) of everything whose expressions are checked."""
        yield from self.resources.items()
        yield from ((f"data.{k}", v) for k, v in self.data.items())
        yield from ((f"var.{k}", v) for k, v in self.variables.items())
        yield from ((f"local.{k}", v) for k, v in self.locals.items())
        yield from ((f"output.{k}", v) for k, v in self.outputs.items())
        yield from ((f"module.{k}", v) for k, v in self.modules.items())


def parse_file(path: Path) -> dict[str, Any]:
    """One .tf (or .tfvars) file as python-hcl2's dict."""
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=OPTIONS)


def load_infra(directory: Path = INFRA) -> Infra:
    """Parse every ``*.tf`` file of ``directory`` into one model."""
    infra = Infra()
    for path in sorted(directory.glob("*.tf")):
        parsed = parse_file(path)
        infra.files[path.name] = parsed
        for kind, target in (("resource", infra.resources), ("data", infra.data)):
            for entry in parsed.get(kind, []):
                for type_name, named in entry.items():
                    for name, body in named.items():
                        target[f"{type_name}.{name}"] = body
        for kind, target in (
            ("variable", infra.variables),
            ("output", infra.outputs),
            ("module", infra.modules),
        ):
            for entry in parsed.get(kind, []):
                target.update(entry)
        for entry in parsed.get("locals", []):
            infra.locals.update(entry)
    return infra


def strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed value (keys of maps too: they may be expressions)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def interpolations(template: str) -> Iterator[str]:
    """The contents of each top-level ``${...}`` of a template string."""
    index = 0
    while (start := template.find("${", index)) != -1:
        depth, cursor, quote = 1, start + 2, False
        while cursor < len(template) and depth:
            char = template[cursor]
            if quote:
                if char == "\\":
                    cursor += 1
                elif char == '"':
                    quote = False
            elif char == '"':
                quote = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            cursor += 1
        yield template[start + 2 : cursor - 1]
        index = cursor


def references(
    template: str, iterators: frozenset[str] = frozenset()
) -> set[tuple[str, str, str | None]]:
    """Every (root, name, attribute) an expression in ``template`` refers to."""
    found: set[tuple[str, str, str | None]] = set()
    for expression in interpolations(template):
        code, literals = _split_strings(expression)
        bound = iterators | {n for match in _FOR_VARS.finditer(code) for n in match.groups() if n}
        for root, name, attribute in _TOKEN.findall(code):
            if root not in bound:
                found.add((root, name, attribute or None))
        for literal in literals:
            found |= references(literal, bound)
    return found


def unresolved_references(infra: Infra) -> list[str]:
    """'<block>: <reference>' for each reference that resolves to nothing declared."""
    iterators = _dynamic_block_names(infra)
    problems = []
    for address, body in infra.blocks():
        for text in strings(body):
            for root, name, attribute in references(text):
                if not _resolves(infra, root, name, attribute, iterators):
                    shown = f"{root}.{name}" + (f".{attribute}" if root == "data" else "")
                    problems.append(f"{address}: {shown}")
    return sorted(set(problems))


def reference(value: Any) -> str | None:
    """``type.name`` (or ``var.x`` ...) when ``value`` is exactly one reference expression."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        refs = references(value)
        if len(refs) == 1:
            root, name, _ = next(iter(refs))
            return f"{root}.{name}"
    return None


def _resolves(
    infra: Infra, root: str, name: str, attribute: str | None, iterators: set[str]
) -> bool:
    if root in LANGUAGE_ROOTS or root in iterators:
        return True
    if root == "var":
        return name in infra.variables
    if root == "local":
        return name in infra.locals
    if root == "module":
        return name in infra.modules
    if root == "data":
        return f"{name}.{attribute}" in infra.data
    return f"{root}.{name}" in infra.resources


def _dynamic_block_names(infra: Infra) -> set[str]:
    """Names of dynamic blocks: inside their content, the name is the iterator."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "dynamic":
                    for entry in item if isinstance(item, list) else [item]:
                        names.update(entry)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for _, body in infra.blocks():
        walk(body)
    return names


def _split_strings(expression: str) -> tuple[str, list[str]]:
    """The expression without its string literals, and those literals' contents."""
    code: list[str] = []
    literals: list[str] = []
    index = 0
    while index < len(expression):
        char = expression[index]
        if char != '"':
            code.append(char)
            index += 1
            continue
        end, depth = index + 1, 0
        while end < len(expression):
            if expression[end] == "\\":
                end += 2
                continue
            if expression.startswith("${", end):
                depth += 1
                end += 2
                continue
            if expression[end] == "}" and depth:
                depth -= 1
            elif expression[end] == '"' and not depth:
                break
            end += 1
        literals.append(expression[index + 1 : end])
        code.append('""')
        index = end + 1
    return "".join(code), literals
