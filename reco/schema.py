"""The base of every config section: unknown keys are errors, values are checked on assignment.

Each subsystem defines its own section model next to its code (``reco/<area>/config.py``) on
this base, and ``reco.config.Config`` gathers the sections into one schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
