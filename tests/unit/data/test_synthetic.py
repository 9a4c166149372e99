import numpy as np
import pandas as pd

from reco.data import synthetic
from reco.data.config import SyntheticConfig

CFG = SyntheticConfig(n_users=3000, n_topics=200, n_communities=8, users_per_chunk=1000, seed=3)


def test_deterministic_by_seed_and_chunked_the_same_way():
    a = synthetic.generate(CFG)
    b = synthetic.generate(CFG)
    assert a.equals(b)
    c = synthetic.generate(SyntheticConfig(**{**CFG.model_dump(), "seed": 4}))
    assert not a.equals(c)


def test_schema_ids_and_uniqueness():
    t = synthetic.generate(CFG).to_pandas()
    assert set(t.columns) == {"user_id", "topic_id", "weight", "ts"}
    assert t.user_id.between(0, CFG.n_users - 1).all()
    assert t.topic_id.between(0, CFG.n_topics - 1).all()
    assert not t.duplicated(["user_id", "topic_id"]).any()
    assert t.weight.between(1, 5).all()


def test_users_have_one_to_three_communities():
    m = pd.concat([synthetic.memberships(CFG, c).to_pandas() for c in range(synthetic.n_chunks(CFG))])
    k = m.groupby("user_id").size()
    assert k.min() == 1 and k.max() == 3
    assert len(k) == CFG.n_users
    assert np.allclose(m.groupby("user_id")["share"].sum(), 1.0, atol=1e-5)


def test_activity_is_heavy_tailed():
    n = synthetic.generate(CFG).to_pandas().groupby("user_id").size()
    assert n.max() > 5 * n.median()


def test_engagement_follows_planted_communities():
    """Most of a user's interactions fall in their own communities' topics (noise 10%)."""
    t = synthetic.generate(CFG).to_pandas()
    topics = synthetic.topic_table(CFG).to_pandas().set_index("topic_id")["community"]
    m = pd.concat([synthetic.memberships(CFG, c).to_pandas() for c in range(synthetic.n_chunks(CFG))])
    t["community"] = topics.reindex(t.topic_id).to_numpy()
    member = set(zip(m.user_id, m.community))
    in_own = np.mean([(u, c) in member for u, c in zip(t.user_id, t.community)])
    assert in_own > 0.8
    # and a random community assignment would be far lower
    rng = np.random.default_rng(0)
    fake = np.mean([(u, c) in member for u, c in zip(t.user_id, rng.integers(0, CFG.n_communities, len(t)))])
    assert fake < 0.4


def test_each_interaction_has_its_own_time():
    t = synthetic.generate(CFG).to_pandas()
    assert (t.ts > 1_500_000_000).all()
    g = t.groupby("user_id").ts
    assert (g.nunique() == g.size()).mean() > 0.99
