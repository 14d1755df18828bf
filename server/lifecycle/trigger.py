"""The ``--when`` condition of ``retrain``: a small, safe expression language.

An expression is parsed with :mod:`ast` and only these nodes are accepted: names of
the quantities in :data:`QUANTITIES`, numbers, comparisons (``< <= > >= == !=``,
chains included), ``and``/``or``/``not`` and parentheses. Nothing is ever passed to
``eval``: the tree is walked here, so no attribute, call or subscript can run.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass

from common.errors import TriggerError

QUANTITIES: dict[str, str] = {
    "new_versions": "sites whose clean table has a version the champion did not train on",
    "drift": "largest PSI of a site's current data against its data at the champion's training",
    "days_since": "days since the champion finished training",
    "budget_left": "smallest epsilon a site has left (inf without DP)",
    "sites": "sites that answered the query",
}

_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


@dataclass(frozen=True)
class Condition:
    """A parsed ``--when`` expression.

    Parameters
    ----------
    text : the expression as written.
    tree : its checked syntax tree.
    """

    text: str
    tree: ast.expr

    def names(self) -> set[str]:
        """The quantities the expression reads."""
        return {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}

    def evaluate(self, values: Mapping[str, float]) -> bool:
        """Whether the condition holds for ``values`` (quantity -> number)."""
        return bool(_value(self.tree, values))


def parse_condition(text: str) -> Condition:
    """Parse and check ``text``; a :class:`TriggerError` names what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as error:
        raise TriggerError(f"--when '{text}' does not parse ({error.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in QUANTITIES:
            raise TriggerError(
                f"--when '{text}': unknown quantity '{node.id}' (known: {', '.join(QUANTITIES)})"
            )
        if not isinstance(node, _ALLOWED):
            raise TriggerError(
                f"--when '{text}': {type(node).__name__.lower()} is not allowed "
                "(only quantities, numbers, comparisons, and, or, not)"
            )
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise TriggerError(f"--when '{text}': {node.value!r} is not a number")
    return Condition(text.strip(), tree)


_ALLOWED = (
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    *_COMPARE,
)


def _value(node: ast.expr, values: Mapping[str, float]) -> float | bool:
    if isinstance(node, ast.Constant):
        return node.value  # type: ignore[return-value]  # parse() admits numbers only
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, values)
        return (not operand) if isinstance(node.op, ast.Not) else -operand
    if isinstance(node, ast.BoolOp):
        parts = (_value(v, values) for v in node.values)
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.Compare):
        left = _value(node.left, values)
        for op, right_node in zip(node.ops, node.comparators):
            right = _value(right_node, values)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise TriggerError(f"cannot evaluate {type(node).__name__}")  # parse_condition forbids it
