"""The library's messages in the CLI's words: ``size=500`` is ``--size 500`` on the command line.

The library names its keyword arguments (``give size= (e.g. 500)``, ``among='diverse-10'``); its messages stay as
they are for Python users, and the CLI rewrites the names of the query's options when it prints them.
"""
from __future__ import annotations

import re

# keyword arguments of the query API that are options of the same name on the command line
OPTIONS = ("size", "top", "among", "method", "lang", "filter_rate", "bar_ratio", "against", "layer")
_ARGUMENT = re.compile(
    r"(?<![\w.\-])(?P<name>" + "|".join(OPTIONS) + r")="
    r"(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|\[(?P<list>[^\]]*)\]|(?P<bare>[^\s,;)\]]*[^\s,;)\].]))?")


def cli_words(text: str) -> str:
    """``text`` with each ``name=value`` of a query option written as the option: ``--name value``."""
    return _ARGUMENT.sub(_option, text)


def _option(match: re.Match) -> str:
    flag = "--" + match["name"].replace("_", "-")
    if match["list"] is not None:
        value = ",".join(item.strip().strip("'\"") for item in match["list"].split(",") if item.strip())
    else:
        value = next((v for v in (match["single"], match["double"], match["bare"]) if v is not None), None)
    return flag if value is None else f"{flag} {value}"
