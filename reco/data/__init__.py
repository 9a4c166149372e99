"""Data: where interactions come from and the shapes every other domain reads.

- formats: input formats (movielens, lastfm, generic CSV/TSV/Parquet) read into one raw schema;
- synthetic: the planted-community data set (the embedded default);
- histories: per-user histories and their split into inputs and held-out targets;
- vectors: vector columns in Parquet;
- config: the ``data`` and ``ingest`` config sections.
"""
