"""Read a YAML file that nobody vouches for: safe tags only, and bounded in every dimension.

Suite files arrive from pull requests and other machines. ``yaml.safe_load`` already refuses
arbitrary Python objects, but it still lets a few hundred bytes expand into billions of values
through nested aliases (PyYAML shares the objects, so the blow-up happens later, in whatever walks
the result: validation, hashing, JSON), recurse until ``RecursionError`` on deep nesting, and
silently keep the last of two equal keys. This loader refuses each of those, and a file that is
too large, not UTF-8, or not a regular file, with one line saying what and where.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: the largest committed suite is ~12 KB; 1 MiB leaves room for any real suite, and keeps parsing
#: (pure-Python PyYAML) under a second
MAX_BYTES = 1 << 20
#: values after aliases are expanded; the committed suites hold a few thousand
MAX_NODES = 100_000
#: containers inside containers; the committed suites nest about 7 deep
MAX_DEPTH = 32

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLoadError(ValueError):
    """A file this loader refuses; the message is one line, without the file name."""


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that bounds nesting while composing and refuses duplicate mapping keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        # composing recurses once per level: stop long before Python's recursion limit
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLoadError(f"{_at(mark)}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except YamlLoadError:
            raise
        except (ValueError, TypeError, OverflowError) as e:
            # a scalar its tag cannot hold: a 5000-digit int, a 13th month
            raise YamlLoadError(f"{_at(node.start_mark)}: unreadable value ({e})") from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # '<<: *anchor' merges on purpose; explicit keys override merged ones
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise YamlLoadError(f"{_at(key_node.start_mark)}: duplicate key {key!r} "
                                    f"(first at line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``."""
    if path.is_dir():
        raise YamlLoadError("is a directory (expected a YAML file)")
    if not path.exists():
        raise YamlLoadError("no such file")
    if not path.is_file():
        raise YamlLoadError("not a regular file (expected a YAML file)")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # never more than the bound, whatever stat said
    except OSError as e:
        raise YamlLoadError(f"cannot be read ({e.strerror or e})") from None
    if len(data) > max_bytes:
        raise YamlLoadError(f"larger than {max_bytes:,} bytes (expected a suite-sized file)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlLoadError(f"not UTF-8 text (invalid byte at offset {e.start})") from None


def load_text(text: str) -> Any:
    """The one document in ``text``, as plain Python values, or :class:`YamlLoadError`."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, 1, {}, set())
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        raise YamlLoadError(f"not valid YAML ({_describe(e)})") from None
    except yaml.YAMLError as e:
        raise YamlLoadError(f"not valid YAML ({' '.join(str(e).split())})") from None
    finally:
        loader.dispose()


def load_file(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    return load_text(read_text(Path(path), max_bytes))


def _describe(e: yaml.MarkedYAMLError) -> str:
    """PyYAML's message is several lines with a snippet; keep the problem and where."""
    parts = [p for p in (e.context, e.problem) if p]
    mark = e.problem_mark or e.context_mark
    where = f" at {_at(mark)}" if mark is not None else ""
    return f"{'; '.join(parts) or 'parse error'}{where}"


def _measure(node, depth: int, sizes: dict[int, tuple[int, int]], stack: set[int]) -> tuple[int, int]:
    """(values, height) of ``node`` once every alias is expanded, refusing cycles and anything
    over :data:`MAX_NODES` or :data:`MAX_DEPTH`. Memoised per node, so an alias bomb costs as
    much to measure as it took to write."""
    key = id(node)
    if key in stack:
        raise YamlLoadError(f"{_at(node.start_mark)}: an alias refers to a value that contains it")
    if key not in sizes:
        if depth > MAX_DEPTH:
            raise YamlLoadError(f"{_at(node.start_mark)}: nested more than {MAX_DEPTH} levels "
                                "deep once aliases are expanded")
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        stack.add(key)
        size, height = 1, 1
        for child in children:
            child_size, child_height = _measure(child, depth + 1, sizes, stack)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_NODES:
                raise YamlLoadError(f"{_at(node.start_mark)}: expands to more than "
                                    f"{MAX_NODES:,} values (aliases nested too deep or too wide)")
        stack.discard(key)
        sizes[key] = (size, height)
    size, height = sizes[key]
    if depth + height - 1 > MAX_DEPTH:
        raise YamlLoadError(f"{_at(node.start_mark)}: nested more than {MAX_DEPTH} levels deep "
                            "once aliases are expanded")
    return size, height
