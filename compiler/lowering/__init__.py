"""Lowering IR graphs onto hardware targets: closed-form unit models and Program builders."""


class LoweringError(ValueError):
    """The graph cannot be mapped onto this hardware (names the node, the resource and by how much)."""
