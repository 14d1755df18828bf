"""With an id column the unit of privacy is the subject: one row per subject per release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from client.federation.train_round import train_reply
from client.pipeline.prepare import prepare
from client.privacy.release import exact_moments, sensitivity
from client.privacy.subjects import (
    one_frame_row_per_subject,
    one_row_per_subject,
    unit_of_privacy,
)
from client.site import Site
from common import keys
from common.config import load_site_config
from common.features import FeatureSpec
from tests.client.subject_sites import write_subject_site
from tests.privacy.conftest import train_message

SUBJECTS, VISITS = 40, 3


def _visits_site(root: Path) -> Site:
    path = write_subject_site(root, 0, rows=SUBJECTS * VISITS, dp=True, visits=VISITS)
    prepare(load_site_config(path))
    return Site.from_path(path)


def test_a_subject_with_many_visits_trains_as_one_row(tmp_path):
    site = _visits_site(tmp_path)
    assert unit_of_privacy(site.config).startswith("subject (id column 'patient'")

    reply = train_reply(site, train_message(site, run_id="run"), site.config.base_dir)

    assert keys.EXCLUDED not in reply.content, reply.content
    assert int(reply.content[keys.METRICS][keys.NUM_EXAMPLES]) == SUBJECTS


def test_one_row_per_subject_draws_each_of_its_rows():
    subjects = np.repeat(np.arange(5).astype(str), 4)
    drawn = [one_row_per_subject(subjects, np.random.default_rng(s)) for s in range(200)]
    assert all(sorted(subjects[rows]) == list("01234") for rows in drawn)
    assert len({int(rows[0]) for rows in drawn}) == 4  # any of subject 0's four rows


SPEC = FeatureSpec(["age", "chol"], [0.0, 100.0], [120.0, 600.0], "num", ["0", "1"])
visit = st.tuples(st.floats(-50, 700, allow_nan=False), st.floats(-50, 700, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(
    others=st.lists(st.tuples(st.integers(0, 9), visit), min_size=1, max_size=30),
    new_visits=st.lists(visit, min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_adding_a_subject_with_many_rows_moves_the_moments_by_at_most_one_rows_bound(
    others, new_visits, seed
):
    def frame(rows):
        return pl.DataFrame(
            {
                "patient": [f"P{s}" for s, _ in rows],
                "age": [v[0] for _, v in rows],
                "chol": [v[1] for _, v in rows],
                "num": [0] * len(rows),
            }
        )

    with_subject = [*others, *((99, v) for v in new_visits)]
    # The same draw for everyone else: the subject's rows do not change who else is kept.
    before = one_frame_row_per_subject(frame(others), "patient", np.random.default_rng(seed))
    after = one_frame_row_per_subject(frame(with_subject), "patient", np.random.default_rng(seed))
    after_others = after.filter(pl.col("patient") != "P99")
    assert after.height == before.height + 1
    moved = exact_moments(after, SPEC) - exact_moments(after_others, SPEC)
    assert np.linalg.norm(moved) <= sensitivity(2) + 1e-9
