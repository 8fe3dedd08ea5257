"""A griffe extension for the documentation site (mkdocs.yml loads it; the package never imports it).

The docstrings in ``src/`` are Google style with a few Sphinx habits that Markdown would print as they
are. Before mkdocstrings renders a docstring, this extension rewrites, in the text it reads (the source
files are not touched):

* ``:func:`~convscope.api.resolve``` and the other roles (``class``, ``meth``, ``mod``, ``data``,
  ``attr``, ``exc``, ``obj``) into a code span linked to that object when the site documents it, plain code
  otherwise (an optional cross-reference: never a warning under ``mkdocs build --strict``); ``~`` shows
  the last name only, as in Sphinx; names relative to the object are looked up from it;
* an ``Example:`` section holding ``>>>`` lines into ``Examples:``, so they render as a code block;
* a reStructuredText literal block (a line ending in ``::``, then an indented block) into a line ending in
  ``:`` and a fenced code block (inside the section when the line is a header such as ``Example::``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([\w.]+)(?:\(\))?`")
_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_LITERAL = re.compile(r"^(?P<indent>\s*)(?P<text>.*\S)::\s*$")
_HEADER = re.compile(r"^\w[\w ]*$")


class RstRoles(griffe.Extension):
    """Rewrite Sphinx roles and doctest ``Example:`` sections in every docstring."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._walk(pkg, loader, set())

    def _walk(self, obj: Any, loader: griffe.GriffeLoader, seen: set[str]) -> None:
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj.docstring.value, obj, loader)
        for member in obj.members.values():
            self._walk(member, loader, seen)

    def _rewrite(self, text: str, obj: Any, loader: griffe.GriffeLoader) -> str:
        def role(match: re.Match[str]) -> str:
            short, name = match.group(1) == "~", match.group(2)
            title = name.rsplit(".", 1)[-1] if short else name
            target = self._find(name, obj, loader)
            return f'<autoref identifier="{html.escape(target)}" optional><code>{html.escape(title)}</code></autoref>'

        text = _ROLE.sub(role, text)
        if ">>>" in text:
            text = _EXAMPLE.sub(r"\1Examples:", text)
        return _literal_blocks(text)

    @staticmethod
    def _find(name: str, obj: Any, loader: griffe.GriffeLoader) -> str:
        """The full path of ``name`` as seen from ``obj``: itself, then from the enclosing scopes."""
        scope = obj
        while scope is not None:
            candidate = f"{scope.path}.{name}"
            try:
                loader.modules_collection.get_member(candidate)
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                scope = scope.parent
                continue
            return candidate
        return name


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(text: str) -> str:
    """``Text::`` + an indented block -> ``Text:`` + the block fenced as code."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        match = _LITERAL.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match.group("indent"))
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        k = j
        while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > indent):
            k += 1
        while k > j and not lines[k - 1].strip():
            k -= 1
        out.append(f"{match.group('indent')}{match.group('text')}:")
        if k == j:  # no indented block follows: only the colon changes
            i += 1
            continue
        block = lines[j:k]
        # a section header ("Example::") keeps its block indented (griffe dedents a section's body);
        # after a paragraph the block is dedented to the paragraph's level
        shift = (
            0 if _HEADER.match(match.group("text")) else min(_indent(b) for b in block if b.strip()) - indent
        )
        fence = " " * (indent + (4 if shift == 0 else 0)) + "```"
        out += [*([] if shift == 0 else [""]), fence, *(b[shift:] for b in block), fence, ""]
        i = k
    return "\n".join(out)
