"""Named implementations of one interface: ranking models, retrievers, expansion methods, policies.

Each domain keeps one :class:`Registry` and lists its members in one place, beside the code that
looks them up (``reco.rank.models.MODELS``, ``reco.retrieval.registry.RETRIEVERS``,
``reco.expansion.expander.SCORERS``, ``reco.policy.bandits.factory.POLICIES``). A config names a
member; an unknown name fails with one line listing the known ones. To add a model, write its
module and add one line to its domain's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from reco.errors import ConfigError, RecoError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> implementation map whose lookups fail with the names it knows."""

    def __init__(self, kind: str, setting: str = "", error: type[RecoError] = ConfigError):
        self.kind = kind  # what a member is, for messages ("ranking model")
        self.setting = setting  # the config key that names a member, if any ("ranking.model.name")
        self.error = error
        self._members: dict[str, T] = {}

    def add(self, name: str, member: T) -> T:
        if name in self._members:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._members[name] = member
        return member

    def get(self, name: str) -> T:
        if name not in self._members:
            where = f"{self.setting}: " if self.setting else ""
            raise self.error(f"{where}unknown {self.kind} {name!r}; expected one of {self.names()}")
        return self._members[name]

    def names(self) -> list[str]:
        """Every member's name, in the order they were added."""
        return list(self._members)

    def items(self) -> list[tuple[str, T]]:
        return list(self._members.items())

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)
