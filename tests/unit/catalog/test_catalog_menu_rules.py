"""Menu validation as a unit and cart-line modifier rules, without servers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import msgspec
import pytest

from catalog.menu import index_menu, prepare_menu, resolve_lines
from catalog.messages import CartLineInput, MenuIn, SelectedOption
from kernel.errors import ValidationFailed
from kernel.money import Money

_ids = itertools.count()
AT = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def menu(items: list[dict]) -> MenuIn:
    return msgspec.convert({"categories": [{"name": "Main", "items": items}]}, MenuIn)


SAUCES = {"id": "g_sauce", "name": "Sauces", "min": 1, "max": 2, "options": [
    {"id": "ketchup", "name": "Ketchup", "price": 30, "max_quantity": 2},
    {"id": "mayo", "name": "Mayo", "price": 40},
    {"id": "aioli", "name": "Aioli", "available": False}]}
NESTED = {"id": "g_l1", "name": "L1", "min": 0, "max": 1, "options": [
    {"id": "o1", "name": "O1", "price": 1, "modifier_groups": [
        {"id": "g_l2", "name": "L2", "min": 1, "max": 1, "options": [
            {"id": "o2", "name": "O2", "price": 10, "modifier_groups": [
                {"id": "g_l3", "name": "L3", "min": 1, "max": 1, "options": [
                    {"id": "o3", "name": "O3", "price": 100}]}]}]}]}]}


def indexed(items: list[dict]):
    return index_menu(prepare_menu(menu(items), new_id), 1, "EUR")


def test_prepare_assigns_ids_and_keeps_given_ones() -> None:
    prepared = prepare_menu(menu([{"name": "Fries", "price": 300, "modifier_groups": [SAUCES]},
                                  {"id": "itm_x", "name": "X", "price": 1}]), new_id)
    items = prepared.categories[0].items
    assert items[0].id.startswith("itm_") and items[1].id == "itm_x"
    assert prepared.categories[0].id.startswith("cat_")


@pytest.mark.parametrize(("items", "param"), [
    ([{"name": "A", "price": 1, "modifier_groups": [{"name": "G", "min": 3, "max": 2,
                                                     "options": [{"name": "o", "max_quantity": 5}]}]}],
     "categories[0].items[0].modifier_groups[0].min"),
    ([{"name": "A", "price": 1, "modifier_groups": [{"name": "G", "min": 2, "max": 2,
                                                     "options": [{"name": "o"}]}]}],
     "categories[0].items[0].modifier_groups[0].min"),
    ([{"id": "dup", "name": "A", "price": 1}, {"id": "dup", "name": "B", "price": 1}],
     "categories[0].items[1].id"),
    ([{"name": "A", "price": 1, "modifier_groups": [
        {"name": "G", "options": [{"id": "same", "name": "a"}]},
        {"name": "H", "options": [{"id": "same", "name": "b"}]}]}],
     "categories[0].items[0].modifier_groups[1].options[0].id"),
])
def test_menu_rule_breaks_are_rejected_with_the_path(items, param) -> None:
    with pytest.raises(ValidationFailed) as err:
        prepare_menu(menu(items), new_id)
    assert err.value.param == param


def test_negative_price_is_a_schema_error_with_the_path() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"categories\[0\]\.items\[0\]\.price"):
        menu([{"name": "A", "price": -1}])


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    group: dict = {"name": "leaf", "options": [{"name": "x"}]}
    for _ in range(6):
        group = {"name": "g", "options": [{"name": "o", "modifier_groups": [group]}]}
    with pytest.raises(ValidationFailed, match="nest at most"):
        prepare_menu(menu([{"name": "A", "price": 1, "modifier_groups": [group]}]), new_id)


def test_three_levels_of_nested_options_are_priced() -> None:
    m = indexed([{"id": "i", "name": "I", "price": 1000, "modifier_groups": [NESTED]}])
    line = CartLineInput("i", 3, [SelectedOption("o1", 1, [SelectedOption("o2", 1, [SelectedOption("o3")])])])
    [resolved] = resolve_lines(m, [line], {}, at=AT)
    assert resolved.unit_price == Money(1111, "EUR") and resolved.line_total == Money(3333, "EUR")


def test_nested_required_group_must_be_chosen() -> None:
    m = indexed([{"id": "i", "name": "I", "price": 1000, "modifier_groups": [NESTED]}])
    line = CartLineInput("i", 1, [SelectedOption("o1", 1, [SelectedOption("o2")])])
    with pytest.raises(ValidationFailed) as err:
        resolve_lines(m, [line], {}, at=AT)
    assert err.value.param == "lines[0].options[0].options[0].options"


@pytest.mark.parametrize(("options", "param", "code"), [
    ([], "lines[0].options", "invalid_selection"),  # min 1
    ([SelectedOption("ketchup", 2), SelectedOption("mayo")], "lines[0].options", "invalid_selection"),  # max 2
    ([SelectedOption("ketchup", 3)], "lines[0].options[0].quantity", "invalid_selection"),
    ([SelectedOption("mayo"), SelectedOption("mayo")], "lines[0].options[1].option_id", "invalid_selection"),
    ([SelectedOption("aioli")], "lines[0].options[0].option_id", "item_unavailable"),
    ([SelectedOption("o1")], "lines[0].options[0].option_id", "invalid_selection"),  # another item's option
])
def test_selection_rules(options, param, code) -> None:
    m = indexed([{"id": "fries", "name": "Fries", "price": 300, "modifier_groups": [SAUCES]},
                 {"id": "i", "name": "I", "price": 1, "modifier_groups": [NESTED]}])
    with pytest.raises(ValidationFailed) as err:
        resolve_lines(m, [CartLineInput("fries", 1, options)], {}, at=AT)
    assert (err.value.param, err.value.code) == (param, code)


def test_choose_one_to_two_counts_quantities() -> None:
    m = indexed([{"id": "fries", "name": "Fries", "price": 300, "modifier_groups": [SAUCES]}])
    [line] = resolve_lines(m, [CartLineInput("fries", 1, [SelectedOption("ketchup", 2)])], {}, at=AT)
    assert line.unit_price == Money(360, "EUR")


def test_sold_out_and_exhausted_stock_are_unavailable() -> None:
    m = indexed([{"id": "a", "name": "A", "price": 1, "availability": "sold_out"},
                 {"id": "b", "name": "B", "price": 1}])
    with pytest.raises(ValidationFailed, match="sold out"):
        resolve_lines(m, [CartLineInput("a", 1)], {}, at=AT)
    with pytest.raises(ValidationFailed) as err:
        resolve_lines(m, [CartLineInput("b", 1), CartLineInput("b", 3)], {"b": 2}, at=AT)
    assert err.value.param == "lines[1].item_id"
