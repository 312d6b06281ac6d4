"""The text rules of :mod:`chimpbridge.models.checks` as pydantic types, for the models that
use pydantic: the same functions, so a name is the same valid name on every endpoint.

Lengths stay in ``Field(max_length=...)``; these types add what a length cannot say.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from chimpbridge.models.checks import address_problem, check_text


def _one_line(value: str) -> str:
    return check_text(value)


def _address(value: str) -> str:
    problem = address_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A name, an id, a locale: one line, no control or direction-override characters.
OneLine = Annotated[str, AfterValidator(_one_line)]
# The text of an email address (its syntax is the model's to check): no direction marks either.
AddressText = Annotated[str, AfterValidator(_address)]
