"""Side features for the two-tower model, aligned to dense ids.

MovieLens: items get their 19 genre flags and release decade (one-hot), users their age band,
gender and occupation (one-hot), from ``u.item`` / ``u.user`` beside ``u.data``. Last.fm's
hetrec files here carry no artist-tag assignments (``user_taggedartists.dat`` is not in the
shared data), so Last.fm items are ids only. Other formats have no features.
"""

from __future__ import annotations

import numpy as np

from reco.storage import Location, locate

_AGE_BANDS = np.array([18, 25, 35, 45, 50, 56])  # MovieLens 1M's bands, applied to 100K's ages
_DECADES = np.arange(1920, 2010, 10)


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(index), width), np.float32)
    ok = index >= 0
    out[np.flatnonzero(ok), index[ok]] = 1.0
    return out


def _rows_by_raw_id(
    path: str | Location, sep: str, raw_ids: list[str], encoding: str = "latin-1"
) -> list[list[str] | None]:
    loc = (path if isinstance(path, Location) else locate(path)).require_file("feature file")
    lines = loc.text(encoding).read().splitlines()
    by_id = {parts[0].strip(): parts for parts in (line.split(sep) for line in lines) if len(parts) > 1}
    return [by_id.get(r) for r in raw_ids]


def movielens_item_features(u_item: str | Location, raw_ids: list[str]) -> np.ndarray:
    """(n, 19 + decades + 1) genre flags, release decade one-hot, and a 'no date' flag."""
    rows = _rows_by_raw_id(u_item, "|", raw_ids)
    genres = np.zeros((len(rows), 19), np.float32)
    decade = np.full(len(rows), -1, np.int64)
    for i, parts in enumerate(rows):
        if parts is None or len(parts) < 24:
            continue
        genres[i] = np.asarray(parts[5:24], np.float32)
        date = parts[2].strip()
        if date[-4:].isdigit():
            decade[i] = int(np.clip(np.searchsorted(_DECADES, int(date[-4:]), side="right") - 1, 0, len(_DECADES) - 1))
    no_date = (decade < 0).astype(np.float32)[:, None]
    return np.hstack([genres, _one_hot(decade, len(_DECADES)), no_date])


def movielens_user_features(u_user: str | Location, raw_ids: list[str]) -> np.ndarray:
    """(n, age bands + 2 + occupations) one-hot; unknown users are all zeros."""
    rows = _rows_by_raw_id(u_user, "|", raw_ids)
    occupations = sorted({p[3] for p in rows if p is not None and len(p) > 3})
    occ_index = {o: i for i, o in enumerate(occupations)}
    age = np.full(len(rows), -1, np.int64)
    gender = np.full(len(rows), -1, np.int64)
    occ = np.full(len(rows), -1, np.int64)
    for i, p in enumerate(rows):
        if p is None or len(p) < 4:
            continue
        age[i] = int(np.searchsorted(_AGE_BANDS, int(p[1]), side="right"))
        gender[i] = 0 if p[2] == "M" else 1
        occ[i] = occ_index[p[3]]
    return np.hstack([_one_hot(age, len(_AGE_BANDS) + 1), _one_hot(gender, 2), _one_hot(occ, max(len(occupations), 1))])


def features_for(
    data_format: str, data_path: str | None, user_raw_ids: list[str], topic_raw_ids: list[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(item features, user features) for a data set, None where it has none."""
    if data_format != "movielens" or not data_path:
        return None, None
    data = locate(data_path)
    u_item, u_user = (
        (data.child("u.item"), data.child("u.user"))
        if data.is_dir()
        else (data.sibling("u.item"), data.sibling("u.user"))
    )
    items = movielens_item_features(u_item, topic_raw_ids) if u_item.is_file() else None
    users = movielens_user_features(u_user, user_raw_ids) if u_user.is_file() else None
    return items, users
