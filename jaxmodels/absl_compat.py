"""absl flags without an absl main: Grain's worker processes and Orbax read flags that nobody parsed."""

from __future__ import annotations

from absl import flags


def flags_marked_parsed() -> flags.FlagValues:
    """absl's FLAGS, marked parsed (at their defaults) if no absl main did so; reading them then works."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    return flags.FLAGS
