"""The one exception type users see: a single line that names the problem and the fix."""


class SftlabError(Exception):
    """A user-facing error (bad config, bad data, missing model).

    Entry points print ``error: <message>`` and exit non-zero, without a traceback.
    """
