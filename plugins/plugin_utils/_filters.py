# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks the collection's filter plugins share (private, controller side).

Every error reads "<filter>: <what> must be <expected>; got <value>", with the
name of the filter that was called: each function takes it as its first argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def fail(filter_name: str, where: str, expected: str, value: Any) -> AnsibleFilterError:
    """The error to raise: "<filter_name>: <where> must be <expected>; got <value>"."""
    return AnsibleFilterError(f"{filter_name}: {where} must be {expected}; got {value!r}")


def is_list(value: Any) -> bool:
    """A list or a tuple, and neither a string nor a dictionary."""
    return isinstance(value, (list, tuple)) and not isinstance(value, (str, bytes, Mapping))


def check_models(filter_name: str, models: Any) -> None:
    """The input of a filter over models is a list (its entries are checked one by one by the filter)."""
    if not is_list(models):
        raise fail(filter_name, "the input", "a list of models (dictionaries)", models)


def model_name(filter_name: str, index: int, model: Any) -> Any:
    """The name of model ``index`` of the input, which must be a dictionary with a non-empty name."""
    if not isinstance(model, Mapping):
        raise fail(filter_name, f"model {index} of the input", "a dictionary with name, model, port, ...", model)
    if model.get("name") in (None, ""):
        raise fail(filter_name, f"model {index} of the input", "a dictionary with a name", dict(model))
    return model["name"]


def jinja_integer(filter_name: str, where: str, value: Any) -> int:
    """An integer the way Jinja's int filter reads it ("16", 16.0, "16.0"); garbage is an error."""
    try:
        return int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            raise fail(filter_name, where, "an integer", value) from None


def jinja_float(filter_name: str, where: str, value: Any) -> float:
    """A number the way Jinja's float filter reads it ("0.5", 1); garbage is an error."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise fail(filter_name, where, "a number", value) from None
