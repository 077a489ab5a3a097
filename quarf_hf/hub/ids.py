"""Telling a Hub repo id from a local path, the same way everywhere a user may give either."""


def looks_like_hub_id(text: str) -> bool:
    """True for "name" or "owner/name"; anything absolute, dotted-relative, deeper or with a
    backslash can only be a local path."""
    return not text.startswith((".", "/", "~")) and text.count("/") <= 1 and "\\" not in text
