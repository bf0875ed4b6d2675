"""YAML as configs read it: PyYAML's safe loader, with the mistakes it would let through
refused (a key given twice, merges it reads wrong). ``stancelab.config`` uses it for config
files and ``--set`` values; import ``load_yaml`` from there."""

from __future__ import annotations

from typing import Any


def load_yaml(text: str) -> Any:
    """``text`` as YAML, as ``yaml.safe_load`` reads it but for a key given twice in one
    mapping, a ``yaml.YAMLError``: a config file, and a ``--set`` value."""
    import yaml

    return yaml.load(text, Loader=_unique_keys_loader())


def _unique_keys_loader():
    """PyYAML's safe loader, except that a key given twice in one mapping is an error: plain
    YAML keeps the last value and drops the first unsaid (a second ``params:`` block would
    replace the whole first one). So are the merges (``<<``) PyYAML (6.0.4) reads wrong: of a
    mapping that merges another itself (``<<: {<<: {C: 1.0}, C: 4.0}`` gives ``C: 1.0``), and
    of two mappings that give one key (``<<: [*a, *b]``: which wins depends on the key's
    length). A config must never load with another value than the one it shows; a key given
    in the mapping itself overrides a merged one, as YAML says, and is read right."""
    import yaml

    merge = "tag:yaml.org,2002:merge"

    class UniqueKeys(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self.as_written: dict = {}  # mapping node -> its pairs before a merge rewrote them

        def flatten_mapping(self, node):
            # A merge rewrites the pairs of the mapping, and of every mapping merged into
            # it, in place: read them as written, before that.
            self.as_written.setdefault(node, list(node.value))
            merged: dict = {}  # key -> the merged mapping that gives it
            for key_node, value_node in self.as_written[node]:
                if key_node.tag != merge:
                    continue
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else []
                for source in sources if sources else [value_node]:
                    if not isinstance(source, yaml.MappingNode):
                        continue  # the base class says what is wrong
                    pairs = self.as_written.setdefault(source, list(source.value))
                    if any(k.tag == merge for k, _ in pairs):
                        self.refuse_merge(node, source, "a mapping that merges another itself")
                    for key in self.refuse_repeated_keys(source):
                        if key in merged:
                            # which one wins depends, in PyYAML, on the key's length
                            self.refuse_merge(node, source, f"two mappings that both give {key!r}")
                        merged[key] = source
            super().flatten_mapping(node)

        def refuse_merge(self, node, source, what):
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"it merges (<<) {what}, which PyYAML reads wrong; merge mappings that "
                "merge nothing and share no key, and give a key that must win in this one",
                source.start_mark,
            )

        def refuse_repeated_keys(self, node) -> set:
            """The keys ``node`` gives itself (merges aside); an error for one given twice."""
            seen: set = set()
            for key_node, _ in self.as_written.get(node, node.value):
                if key_node.tag == merge:  # `<<:`, which keys override
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):  # unhashable: the base class says so
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} is given twice",
                        key_node.start_mark,
                    )
                seen.add(key)
            return seen

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                self.refuse_repeated_keys(node)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeys
