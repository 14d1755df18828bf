"""The hash-chained audit log: any edited, removed or reordered entry is found and named."""

from __future__ import annotations

import json

from common.audit import AuditLog, keyed_digest


def make_log(tmp_path, entries: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit", "site a")
    for n in range(entries):
        log.append("train", round=n + 1, epsilon=float("inf") if n == 0 else 0.5)
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def test_an_intact_log_verifies_and_chains_its_entries(tmp_path):
    log = make_log(tmp_path)
    entries = log.entries()
    assert log.verify() is None
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:]))
    assert entries[0]["fields"] == {"round": 1, "epsilon": None}  # strict JSON, no Infinity
    assert {"seq", "time", "actor", "action", "fields", "prev_hash", "hash"} <= set(entries[0])


def test_an_edited_entry_is_named(tmp_path):
    log = make_log(tmp_path)
    text = lines(log)
    entry = json.loads(text[2])
    entry["fields"]["round"] = 99
    text[2] = json.dumps(entry)
    log.path.write_text("\n".join(text) + "\n")
    problem = log.verify()
    assert problem is not None
    assert (problem.line, problem.seq) == (3, 3)
    assert "edited" in str(problem) and "line 3" in str(problem)


def test_an_edit_that_recomputes_the_hash_breaks_the_next_entry(tmp_path):
    from common.audit import entry_hash

    log = make_log(tmp_path)
    text = lines(log)
    entry = json.loads(text[1])
    entry["action"] = "refuse"
    entry["hash"] = entry_hash(entry)
    text[1] = json.dumps(entry)
    log.path.write_text("\n".join(text) + "\n")
    problem = log.verify()
    assert (problem.line, problem.seq) == (3, 3)


def test_removed_and_reordered_entries_are_found(tmp_path):
    log = make_log(tmp_path)
    original = lines(log)
    log.path.write_text("\n".join(original[:1] + original[2:]) + "\n")
    assert (log.verify().line, log.verify().seq) == (2, 2)
    log.path.write_text("\n".join([original[0], original[2], original[1], original[3]]) + "\n")
    assert log.verify().line == 2


def test_deleting_the_last_entry_is_detected_by_the_head(tmp_path):
    log = make_log(tmp_path)
    log.path.write_text("\n".join(lines(log)[:-1]) + "\n")
    problem = log.verify()
    assert problem is not None
    assert problem.seq == 4 and "removed" in problem.reason
    log.path.write_text("")  # every entry gone
    assert log.verify() is not None


def test_the_head_cannot_be_dropped_or_forged_silently(tmp_path):
    log = make_log(tmp_path)
    log.head_path.unlink()
    assert "head" in log.verify().reason
    log.head_path.write_text("not json")
    assert log.verify() is not None


def test_appending_after_verification_continues_the_chain(tmp_path):
    log = make_log(tmp_path, 2)
    AuditLog(tmp_path / "audit", "site a").append("retain", tables={})
    assert log.verify() is None and len(log.entries()) == 3


def test_keyed_digest_depends_on_the_key():
    assert keyed_digest(b"k1", "P1") != keyed_digest(b"k2", "P1")
    assert "P1" not in keyed_digest(b"k1", "P1")


def test_an_append_stopped_between_its_line_and_its_head_is_whole(tmp_path):
    """The line is written and fsynced before the head file moves: a process killed
    in between leaves a complete entry, chained to the head, that the next append follows."""
    log = make_log(tmp_path, 3)
    head_before = log.head_path.read_text()
    log.append("train", round=4)
    log.head_path.write_text(head_before)  # as if killed before the head moved
    assert log.verify() is None and log.head()[0] == 4
    log.append("train", round=5)
    assert log.verify() is None and [e["seq"] for e in log.entries()] == [1, 2, 3, 4, 5]

    first = AuditLog(tmp_path / "first", "site a")
    first.append("train", round=1)
    first.head_path.unlink()  # killed before the first head file existed
    assert first.verify() is None and first.head()[0] == 1


def test_no_more_than_one_whole_chained_entry_passes_the_head(tmp_path):
    log = make_log(tmp_path, 2)
    head_at_2 = log.head_path.read_text()
    log.append("train", round=3)
    log.append("train", round=4)
    log.head_path.write_text(head_at_2)
    assert log.verify() is not None  # two entries past the head: not a stopped append

    edited = make_log(tmp_path / "edited", 2)
    head_at_2 = edited.head_path.read_text()
    edited.append("train", round=3)
    edited.head_path.write_text(head_at_2)
    text = lines(edited)
    entry = json.loads(text[-1])
    entry["fields"]["round"] = 99
    edited.path.write_text("\n".join([*text[:-1], json.dumps(entry)]) + "\n")
    assert edited.verify() is not None
