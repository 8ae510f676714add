"""Errors of the data layer. Both are bad input (`hwsim.errors.BadInput`): the CLI turns them
into one line and exit code 2."""

from hwsim.errors import BadInput


class DataError(BadInput):
    """A task setting the dataset cannot serve (e.g. more ways than it has classes)."""


class DatasetNotFoundError(DataError):
    """A dataset that is not on disk; the message says where to put it."""
