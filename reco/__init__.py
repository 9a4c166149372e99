"""reco: the audience expansion and ranking library.

Everything here works on in-memory batches (numpy, pandas, pyarrow, torch) or files.
It never imports ray: the Ray wiring lives in ray_jobs/ and serve/.
"""

__version__ = "0.1.0"
