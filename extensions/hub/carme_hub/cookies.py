"""``Set-Cookie`` values of the hub's cookies, with the options the hub passes in
``JUPYTERHUB_COOKIE_OPTIONS`` (the hub's ``tornado_settings["cookie_options"]``: a JSON object of
tornado's ``set_cookie`` arguments, such as ``{"samesite": "None", "secure": true}`` or
``{"expires_days": null}``).

jupyterhub-singleuser applies them as its ``HubOAuth`` does: every option over the OAuth cookie's
own attributes; on the short-lived state cookie only those it does not set itself (not its path,
HttpOnly, ten-minute lifetime, Secure when on, nor any expiry). A null value drops the attribute
(``"samesite": null`` sends no SameSite). Keys tornado would not turn into a cookie attribute are
refused at start, not when the first visitor logs in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

# tornado's set_cookie arguments -> (the attribute's name, the JSON types its value may have)
OPTIONS: dict[str, tuple[str, tuple[type, ...]]] = {
    "domain": ("Domain", (str,)),
    "path": ("Path", (str,)),
    "expires": ("Expires", (int, float, str)),
    "expires_days": ("Max-Age", (int, float)),
    "max_age": ("Max-Age", (int,)),
    "httponly": ("HttpOnly", (bool,)),
    "secure": ("Secure", (bool,)),
    "samesite": ("SameSite", (str,)),
}
SAMESITE = ("strict", "lax", "none")
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
EXPIRY = ("expires", "expires_days", "max_age")


def check_options(options: Any, source: str) -> dict[str, Any]:
    """``options`` if they are cookie options; ValueError naming ``source`` and what is wrong."""
    if not isinstance(options, Mapping):
        raise ValueError(f"{source} {json.dumps(options)} is not a JSON object of cookie options")
    for key, value in options.items():
        if key not in OPTIONS:
            raise ValueError(f"{source} has {key!r}, which is not a cookie option (known: {', '.join(OPTIONS)})")
        types = OPTIONS[key][1]
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in types):
            raise ValueError(f"{source} has {key} {json.dumps(value)}, which is not "
                             f"{' or '.join(TYPE_NAMES[t] for t in types)}")
        if key == "samesite" and value is not None and value.lower() not in SAMESITE:
            raise ValueError(f"{source} has samesite {value!r}, which is not one of Strict, Lax, None")
    return dict(options)


def set_cookie(name: str, value: str, attributes: Mapping[str, Any]) -> str:
    """The ``Set-Cookie`` value of ``name`` with ``attributes`` (option names; None or False: left out)."""
    parts = [f"{name}={value}"]
    for key, given in attributes.items():
        if given is None or given is False:
            continue
        if key == "expires_days":
            if attributes.get("max_age") is not None:
                continue  # tornado sends both; Max-Age wins in browsers, so one is enough
            given = int(given * 86400)
        elif key == "expires" and not isinstance(given, str):
            given = formatdate(given, usegmt=True)
        attribute = OPTIONS[key][0]
        parts.append(attribute if given is True else f"{attribute}={given}")
    return "; ".join(parts)
