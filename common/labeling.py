"""The ``[labeling]`` section of site.toml: labeling functions and the active-learning defaults.

A labeling function is a polars SQL condition over the site's columns and the label
it votes for: where the condition holds it votes, elsewhere (false or null) it
abstains. The conditions are parsed here; their columns are checked against the
schema when a site loads its functions (``client.labeling.weak.compile_functions``).
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from common.strict_model import StrictModel


class LabelingFunction(StrictModel):
    """One labeling function.

    Parameters
    ----------
    name : how reports name it.
    when : polars SQL condition, e.g. ``"glucose > 180 AND age >= 50"``.
    label : the class it votes for where ``when`` holds.
    """

    name: str = Field(min_length=1)
    when: str = Field(min_length=1)
    label: str = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _parses(cls, when: str) -> str:
        try:
            pl.sql_expr(when)
        except pl.exceptions.PolarsError as error:
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"condition '{when}' does not parse ({first})") from None
        return when

    @property
    def expression(self) -> pl.Expr:
        return pl.sql_expr(self.when)

    @property
    def columns(self) -> list[str]:
        return self.expression.meta.root_names()


class LabelingSection(StrictModel):
    """How the site labels its unlabeled rows.

    Parameters
    ----------
    functions : the weak-supervision labeling functions.
    threshold : weak labels whose label-model confidence is below it are not applied.
    model : default model for ``label queue`` (an exported model folder, a TorchScript
        file, or a run directory whose newest checkpoint is used); '' = none.
    queue_size : default number of rows ``label queue`` puts in front of annotators.
    strategy : default uncertainty measure of the queue.
    """

    functions: list[LabelingFunction] = Field(default_factory=list)
    threshold: float = Field(default=0.8, ge=0, le=1)
    model: str = ""
    queue_size: int = Field(default=20, ge=1)
    strategy: Literal["entropy", "margin"] = "entropy"

    @field_validator("functions")
    @classmethod
    def _unique_names(cls, functions: list[LabelingFunction]) -> list[LabelingFunction]:
        names = [f.name for f in functions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"labeling function names repeat: {repeated}")
        return functions
