"""The Rényi orders every RDP composition in fedlife takes the minimum over.

An RDP bound holds at every order, so more orders can only tighten epsilon: the
minimum is over a superset. Opacus's default orders stop at 63; a small budget (one
release at epsilon 0.1, a long history at a high noise multiplier) has its optimum
beyond that, and Opacus then warns that the optimal order is the largest one and
reports a looser epsilon than the mechanism has (so a site would add more noise
than it needs). These orders reach 4,441 at the top and 1.01 at the bottom.
"""

from __future__ import annotations

_NEAR_ONE = (1.01, 1.02, 1.03, 1.05, 1.07)
_OPACUS_DEFAULT = tuple(1 + x / 10.0 for x in range(1, 100)) + tuple(
    float(a) for a in range(12, 64)
)
_HIGH = tuple(float(round(64 * 1.25**k)) for k in range(20))  # 64 .. 4,441

RDP_ORDERS: tuple[float, ...] = tuple(sorted(set(_NEAR_ONE + _OPACUS_DEFAULT + _HIGH)))
