"""The one registry helper: duplicates are refused, unknown names raise the registry's error."""

from __future__ import annotations

import pytest

from hwsim.registry import Registry


class Unknown(ValueError):
    pass


def test_lookup_names_the_unknown_entry_and_the_known_ones():
    reg: Registry[int] = Registry("widget", error=Unknown)
    reg.add("b", 2)
    reg.register("a", "c")(1)
    assert reg.lookup("a") == 1 and reg.get("zz") is None
    assert reg.names() == ["a", "b", "c"] and len(reg) == 3 and "c" in reg and 3 not in reg
    with pytest.raises(Unknown, match=r"unknown widget 'zz'; known: a, b, c"):
        reg.lookup("zz")


def test_a_second_entry_under_a_name_is_refused_the_same_one_is_not():
    reg: Registry[object] = Registry("widget")
    thing = object()
    reg.add("a", thing)
    reg.add("a", thing)
    with pytest.raises(RuntimeError, match="two widgets named 'a'"):
        reg.add("a", object())


def test_modules_are_imported_on_first_read_only():
    reg: Registry[object] = Registry("kind", modules=("json",))
    assert not reg._loaded
    reg.add("x", 1)
    assert not reg._loaded          # adding does not import
    assert reg.names() == ["x"] and reg._loaded
