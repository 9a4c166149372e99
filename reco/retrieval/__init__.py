"""Candidate retrieval beyond one vector per user: one interface, several representations.

``reco.retrieval.base`` defines the interface (fit, index users, candidates, user vectors,
save / load); each retriever is a module: popularity, item_knn (last-5 items kNN), pooled (the
spine's StarSpace user), multi_interest (PinnerSage), sequence_tower (PinnerFormer), two_tower,
pixie, mf (the ranking stack's MF). ``registry`` finds them by name
(``create_retriever("pixie", cfg)``, ``load_retriever("pooled", run)``); ``protocol`` holds the
benchmark's splits and metrics.
"""
