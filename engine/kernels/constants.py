"""Numbers the kernels compile in that Python callers use too, so that both sides read one definition
(this module imports nothing: callers load it without numba)."""

UNMATCHED_COST = 1e6
"""Pixels: the cost of pairing two instances that share no node, so optimal assignment leaves them apart
(the live grouper's ``triangulate_group`` and the offline matcher's ``assign``)."""
