"""Registries of rules by Keras name, with aliases and "did you mean" errors."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

RuleT = TypeVar("RuleT")


class UnknownName(KeyError):
    """A name no registry knows; carries the kind and the nearest valid names."""

    def __init__(self, kind: str, name: object, suggestions: list[str]):
        self.kind, self.name, self.suggestions = kind, name, suggestions
        hint = f" (did you mean {' or '.join(map(repr, suggestions))}?)" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class Registry(Generic[RuleT]):
    """Rules of one kind, looked up by canonical name or alias."""

    def __init__(self, kind: str):
        self.kind = kind
        self._rules: dict[str, RuleT] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, rule: RuleT, aliases: tuple[str, ...] = ()) -> RuleT:
        if name in self._rules or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._rules[name] = rule
        for alias in aliases:
            self._aliases[alias] = name
        return rule

    def canonical(self, name: str) -> str:
        if not isinstance(name, str):
            raise UnknownName(self.kind, name, [])
        key = name.strip().lower()
        if key in self._rules:
            return key
        if key in self._aliases:
            return self._aliases[key]
        from ..wording import suggest
        # suggest canonical names only (aliases of the same rule would repeat it), as the
        # framework spells them (Conv2D, CrossEntropyLoss), which the lookup takes in any case
        shown = [getattr(self._rules[k], "name", k) for k in suggest(key, self._rules)]
        raise UnknownName(self.kind, name, shown or suggest(key, self._aliases)[:1])

    def __getitem__(self, name: str) -> RuleT:
        return self._rules[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        try:
            self.canonical(name)  # type: ignore[arg-type]
        except UnknownName:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def names(self) -> list[str]:
        return list(self._rules)
