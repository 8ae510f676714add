"""`BadInput`: the one base class of errors a user causes and can fix.

Every layer raises its own subclass (`SpecError`, `ModelError`, `UnsupportedOpError`,
`LoweringError`, `ConfigError`, `OutputError`, ...), always with one line that names what was
wrong, where, and what is allowed. The CLI turns exactly these into that line on stderr and
exit code 2, without importing the layers that define them; anything else is an internal error
(exit code 1). This module imports nothing, so every layer may use it.
"""


class BadInput(ValueError):
    """An input the user can fix: its message is one line, shown as it is."""
