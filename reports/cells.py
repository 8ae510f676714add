"""Cells made safe for the formats reports write. Names come from inputs — a config's `name`,
an ONNX node, a train result's label — and may hold anything: a `|`, a newline, `<script>`,
a leading `=`.

* `md`: one Markdown table cell that stays one cell and renders as the text it is: `|` and
  markup characters are backslash-escaped, `<`, `>`, `&` become entities, line breaks a space.
* `plain`: one line of terminal text: control characters (escape sequences, line breaks)
  become spaces.
* `csv_safe`: a CSV cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`,
  a tab or a carriage return gets a leading `'` (the OWASP advice for CSV injection).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\|`*\[\]])")
# An underscore starts or ends emphasis only next to a non-word character, so "meta_train"
# needs no escape and stays readable in the raw file.
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(value: Any) -> str:
    return _CONTROL.sub(" ", str(value))


def md(value: Any) -> str:
    text = " ".join(plain(value).split()) if _CONTROL.search(str(value)) else str(value)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(frame: "pd.DataFrame") -> str:
    """`frame` as CSV with every text cell and column name passed through `csv_safe`."""
    from pandas.api.types import is_numeric_dtype

    out = frame.copy()
    for col in out.columns:
        if not is_numeric_dtype(out[col]):   # text, whatever its dtype (object, str, string)
            out[col] = out[col].map(csv_safe)
    out.columns = [csv_safe(str(c)) for c in out.columns]
    return out.to_csv(index=False)
