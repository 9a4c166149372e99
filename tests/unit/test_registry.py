import pytest

from reco.errors import ConfigError, DataError
from reco.expansion.expander import METHODS, SCORERS
from reco.policy.bandits.factory import POLICIES
from reco.rank.models import MODELS
from reco.registry import Registry
from reco.retrieval.registry import RETRIEVERS


def test_lookup_returns_the_member_and_an_unknown_name_lists_the_known_ones():
    reg: Registry[int] = Registry("widget", "app.widget")
    reg.add("a", 1)
    reg.add("b", 2)
    assert reg.get("b") == 2 and reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2
    with pytest.raises(ConfigError, match=r"^app.widget: unknown widget 'c'; expected one of \['a', 'b'\]$"):
        reg.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 3)


def test_the_error_class_is_the_registrys():
    reg: Registry[int] = Registry("method", error=DataError)
    with pytest.raises(DataError, match="unknown method 'x'"):
        reg.get("x")


def test_every_domain_registry_holds_its_members():
    assert {"deepfm", "dcnv2", "autoint+", "neumf", "mmoe"} <= set(MODELS)
    assert RETRIEVERS.names() == [
        "popularity",
        "last_items_knn",
        "pooled",
        "multi_interest",
        "sequence_tower",
        "two_tower",
        "pixie",
        "mf",
        "als",
    ]
    assert all(RETRIEVERS.get(n).name == n for n in RETRIEVERS)
    assert POLICIES.names() == ["thompson", "bernoulli_thompson", "epsilon_greedy", "random"]
    assert METHODS == ("blend", *SCORERS) and "density" in SCORERS
