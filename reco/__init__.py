"""reco: the audience expansion and ranking library.

Its root holds the infrastructure every domain shares: the run directory (run_dir) and the
catalogue of its artifacts (artifacts), vocabularies (vocab), errors, the config section base
(schema) and the aggregator of every section (config), early-stopping state (fit_state), the
registry behind every by-name choice (registry), report plots (plots) and fault injection
(faults). The domains are sibling packages: data, embedding, retrieval, rank, expansion, policy.

Everything here works on in-memory batches (numpy, pandas, pyarrow, torch) or files.
It never imports ray: the Ray wiring lives in ray_jobs/ and serve/.
"""

__version__ = "0.1.0"
