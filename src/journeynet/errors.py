"""Exceptions that the entry points turn into one clear line and a non-zero exit."""


class JourneynetError(Exception):
    """Base class: the message is the one line a user sees."""


class InputError(JourneynetError):
    """A file, column or value in the user's input is unusable."""


class InfeasibleError(JourneynetError):
    """The budget constraints cannot all hold at once."""
