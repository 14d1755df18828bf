"""A column's data class: what kind of data it holds, declared beside its role.

The role says what the pipeline does with a column (a feature feeds the model, an
id is pseudonymized, a pii column is dropped); the class says what kind of data it
is, for the people who sign a site off. ``fedlife-site init`` writes the class its
role implies into site.toml, so the operator sees it and corrects the role if the
class is wrong. A declared class must agree with the role: a class that would let a
column go where its role keeps it (or keep it where its role sends it) is refused,
since the pipeline follows the role, not the class.
"""

from __future__ import annotations

from enum import StrEnum


class DataClass(StrEnum):
    IDENTIFIER = "identifier"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"
    FEATURE = "feature"
    LABEL = "label"
    PUBLIC = "public"


# role -> the classes it may be declared with, the one it implies first. Columns that
# never leave the site (id, pii, timestamp, ignore) may be called identifier or
# personal, except an id, which is the identifier; the others have one class each.
ALLOWED: dict[str, tuple[DataClass, ...]] = {
    "id": (DataClass.IDENTIFIER,),
    "pii": (DataClass.PERSONAL, DataClass.IDENTIFIER),
    "timestamp": (DataClass.PERSONAL, DataClass.IDENTIFIER),
    "ignore": (DataClass.PERSONAL, DataClass.IDENTIFIER),
    "sensitive": (DataClass.SENSITIVE,),
    "label": (DataClass.LABEL,),
    "feature": (DataClass.FEATURE,),
}


def implied_class(role: str, *, public: bool = False) -> DataClass:
    """The class a column with ``role`` has when none is declared.

    ``public`` : the column's ``public`` flag (a feature whose exact statistics the
        site may release is of class public).
    """
    if role == "feature" and public:
        return DataClass.PUBLIC
    return ALLOWED[role][0]


def class_conflict(role: str, declared: DataClass, *, public: bool = False) -> str | None:
    """Why ``declared`` contradicts ``role`` (and the ``public`` flag); None if it agrees."""
    role = str(role)  # a Role (a StrEnum) names itself by its value
    if role == "feature" and declared in (DataClass.FEATURE, DataClass.PUBLIC):
        if (declared is DataClass.PUBLIC) == public:
            return None
        if public:
            return "class 'feature' contradicts public = true (its class is 'public')"
        return "class 'public' needs public = true (the site then releases its exact statistics)"
    allowed = ALLOWED[role]
    if declared in allowed:
        return None
    named = " or ".join(repr(c.value) for c in allowed)
    return f"class {declared.value!r} contradicts role {role!r} (its class is {named})"
