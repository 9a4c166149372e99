"""Candidate retrieval beyond one vector per user: one interface, several representations.

``reco.retrieval.base`` defines the interface (fit, index users, candidates, user vectors,
save / load, a registry by name); each retriever is a module: popularity, item_knn (last-5
items kNN), pooled (the spine's StarSpace user), multi_interest (PinnerSage), sequence_tower
(PinnerFormer), two_tower, pixie. ``protocol`` holds the benchmark's splits and metrics.
Retriever modules load lazily by name: ``reco.retrieval.base.create_retriever("pixie", cfg)``.
"""
