"""Audience expansion: a seed list in, the users who act alike out (deWet & Ou, KDD 2019).

One concept per module:
- region_density: LSH region density (and voting), the per-list sparse {region: score} table;
- affinity_classifier: the per-list MLP, and many lists' MLPs scored together;
- baselines: random, most active, centroid neighbours (faiss), logistic regression;
- blend: the ensemble of density and the classifier; topk: per-batch top-K and the merge;
- fixed_point: exact products, so a user's score does not depend on its batch;
- seed_lists: reading and checking seed lists; list_models: every list's fitted bundle;
- scoring: many lists over batches of users (the Ray Data job's UDF) and the single-process reference;
- expander: one list in-process, for serving;
- list_definitions, protocol, evaluation, report: the evaluation and its table and plot;
- config: the ``expansion`` config section.
"""
