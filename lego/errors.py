"""User-facing errors. Anything raised as LegoError is printed as one line and exits with code 2."""


class LegoError(Exception):
    """Bad input or usage. The message names the bad field and what is allowed."""

    exit_code = 2


class CheckFailed(Exception):
    """A verification check failed (e.g. RTL output mismatch): exit code 1."""

    exit_code = 1
