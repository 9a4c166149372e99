"""Vector columns in Parquet: ``fixed_size_list<float32>[dim]`` beside a dense id.

Any Arrow reader (Ray Data, pandas, DuckDB) loads them without a custom codec, and a (n, dim)
numpy matrix comes back without a copy per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def vector_column(mat: np.ndarray) -> pa.FixedSizeListArray:
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


def vectors_of(table: pa.Table, column: str = "embedding") -> np.ndarray:
    col = table.column(column).combine_chunks()
    dim = col.type.list_size
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)


def vector_table(id_column: str, ids: np.ndarray, mat: np.ndarray) -> pa.Table:
    return pa.table({id_column: np.asarray(ids, np.int64), "embedding": vector_column(mat)})
