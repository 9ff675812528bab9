"""Pull identifiers and money amounts out of a user's message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# Business identifiers look like ORD-1001, TCK-42, CUST-7: 2-5 capitals, a dash, digits.
ID_PATTERN = re.compile(r"\b[A-Z]{2,5}-\d+\b")

# "1,250.00" (thousands separators) or "25", "25.5", "25.50", "25,50" (decimal comma).
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP"}
_WORDS = {
    "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "usd": "USD", "dollar": "USD", "dollars": "USD",
    "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
}  # fmt: skip
_WORD_ALT = "|".join(sorted(_WORDS, key=len, reverse=True))
_MONEY = re.compile(
    rf"(?P<sym>[€$£])\s?(?P<n1>{_NUMBER})(?!\d)"
    rf"|\b(?P<code>EUR|USD|GBP)\s?(?P<n2>{_NUMBER})(?!\d)"
    rf"|(?<![\w.,-])(?P<n3>{_NUMBER})\s?(?:(?P<sym3>[€$£])|(?P<word>{_WORD_ALT})\b)",
    re.IGNORECASE,
)
_INTEGER = re.compile(r"(?<![\w-])(?<!\d[.,])\d+(?!\w|[.,]\d)")


@dataclass(frozen=True)
class Money:
    cents: int
    currency: str


def first_id(text: str) -> str | None:
    match = ID_PATTERN.search(text)
    return match.group(0) if match else None


def first_money(text: str) -> Money | None:
    """The first amount with a currency marker: ``€25``, ``25 EUR``, ``$25.50``, ``25.50 euros``."""
    match = _MONEY.search(text)
    if not match:
        return None
    number = match.group("n1") or match.group("n2") or match.group("n3")
    if match.group("sym"):
        currency = _SYMBOLS[match.group("sym")]
    elif match.group("code"):
        currency = match.group("code").upper()
    elif match.group("sym3"):
        currency = _SYMBOLS[match.group("sym3")]
    else:
        currency = _WORDS[match.group("word").lower()]
    return Money(cents=_to_cents(number), currency=currency)


def first_integer(text: str) -> int | None:
    """The first free-standing integer, ignoring digits inside identifiers and decimals."""
    match = _INTEGER.search(text)
    return int(match.group(0)) if match else None


def _to_cents(number: str) -> int:
    if "," in number and "." not in number and re.fullmatch(r"\d+,\d{1,2}", number):
        number = number.replace(",", ".")  # decimal comma, as in "25,50 €"
    else:
        number = number.replace(",", "")
    # Decimal, not float: 25.10 must become 2510, not 2509.
    return int((Decimal(number) * 100).to_integral_value())
