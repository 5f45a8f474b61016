"""Menu rules, pure: validating a whole menu as a unit, and resolving cart lines against it.

A menu is categories -> items -> modifier groups -> options, and an option may carry its own
modifier groups (nesting is allowed down to `MAX_DEPTH` group levels). A group's `min`/`max`
bound the total quantity selected in it; `max_quantity` bounds one option. Option ids are unique
among the options offered at one level (the groups of one item, or of one option), so a selection
names an option by id alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from catalog.errors import InvalidSelection, ItemUnavailable
from catalog.messages import Availability, CartLineInput, ItemIn, MenuIn, ModifierGroupIn, OptionIn, SelectedOption
from catalog.model import QuoteContext, ResolvedLine, ResolvedOption, next_local_midnight
from kernel.errors import ValidationFailed
from kernel.money import Money

MAX_DEPTH = 5  # group levels under an item: item > group > option > group > option > ...
MAX_ITEMS = 5_000
SOLD_OUT_MAX_AHEAD = timedelta(days=30)  # the furthest end a merchant may give a sold-out item


def prepare_menu(menu: MenuIn, new_id: Callable[[str], str], param: str = "") -> MenuIn:
    """Validate the whole menu and give every category, item, group and option an id.

    Raises ValidationFailed with the field path of the first problem; the input is not modified."""
    p = f"{param}." if param else ""
    seen_items: set[str] = set()
    seen_cats: set[str] = set()
    categories = []
    count = 0
    for ci, cat in enumerate(menu.categories):
        cat_id = _fresh_id(cat.id, "cat", seen_cats, new_id, f"{p}categories[{ci}].id")
        items = []
        for ii, item in enumerate(cat.items):
            path = f"{p}categories[{ci}].items[{ii}]"
            item_id = _fresh_id(item.id, "itm", seen_items, new_id, f"{path}.id")
            groups = _prepare_groups(item.modifier_groups, new_id, f"{path}.modifier_groups", 1)
            items.append(msgspec.structs.replace(item, id=item_id, modifier_groups=groups))
            count += 1
        categories.append(msgspec.structs.replace(cat, id=cat_id, items=items))
    if count > MAX_ITEMS:
        raise ValidationFailed(f"a menu may have at most {MAX_ITEMS} items", param=f"{p}categories")
    return MenuIn(categories=categories)


def _fresh_id(given: str | None, prefix: str, seen: set[str], new_id: Callable[[str], str], param: str) -> str:
    if given is not None:
        if not given or len(given) > 64:
            raise ValidationFailed("an id is 1 to 64 characters", param=param)
        if given in seen:
            raise ValidationFailed(f"id {given!r} is used twice", param=param)
        seen.add(given)
        return given
    made = new_id(prefix)
    seen.add(made)
    return made


def _prepare_groups(
    groups: Sequence[ModifierGroupIn], new_id: Callable[[str], str], param: str, depth: int
) -> list[ModifierGroupIn]:
    if groups and depth > MAX_DEPTH:
        raise ValidationFailed(f"modifier groups nest at most {MAX_DEPTH} levels deep", param=param)
    seen_groups: set[str] = set()
    seen_options: set[str] = set()  # unique across all groups of this level
    out = []
    for gi, group in enumerate(groups):
        gpath = f"{param}[{gi}]"
        group_id = _fresh_id(group.id, "grp", seen_groups, new_id, f"{gpath}.id")
        if group.min > group.max:
            raise ValidationFailed(f"min ({group.min}) is greater than max ({group.max})", param=f"{gpath}.min")
        reachable = sum(o.max_quantity for o in group.options if o.available)
        if group.min > reachable:
            raise ValidationFailed(
                f"min ({group.min}) cannot be met by the available options (at most {reachable})",
                param=f"{gpath}.min",
            )
        options = []
        for oi, option in enumerate(group.options):
            opath = f"{gpath}.options[{oi}]"
            option_id = _fresh_id(option.id, "opt", seen_options, new_id, f"{opath}.id")
            nested = _prepare_groups(option.modifier_groups, new_id, f"{opath}.modifier_groups", depth + 1)
            options.append(msgspec.structs.replace(option, id=option_id, modifier_groups=nested))
        out.append(msgspec.structs.replace(group, id=group_id, options=options))
    return out


# ---- availability over time ----------------------------------------------------------------------
#
# "Sold out" means sold out today: a sold-out item carries `sold_out_until` (the next local midnight of
# the store when it was sold out, or an end the merchant gave) and reads as in stock from then on.
# Nothing rewrites the stored menu at that instant: every read decides with its own time, so a menu
# cached as published (raw) never serves a sold-out flag past its end. A sold-out item without an
# end (written before ends existed) stays sold out until the menu is next written.

def availability_at(item: ItemIn, at: datetime) -> Availability:
    """The item's availability at instant `at`: a sold-out whose end has come is in stock."""
    if item.availability == "sold_out" and item.sold_out_until is not None and at >= item.sold_out_until:
        return "in_stock"
    return item.availability


def item_at(item: ItemIn, at: datetime) -> ItemIn:
    """The item as it reads at `at` (an ended sold-out becomes in stock, without an end)."""
    if availability_at(item, at) == item.availability:
        return item
    return msgspec.structs.replace(item, availability="in_stock", sold_out_until=None)


def menu_at(menu: MenuIn, at: datetime) -> MenuIn:
    """The menu as it reads at `at`; the same object when no sold-out has ended."""
    if all(item_at(i, at) is i for c in menu.categories for i in c.items):
        return menu
    return MenuIn(categories=[
        msgspec.structs.replace(c, items=[item_at(i, at) for i in c.items]) for c in menu.categories
    ])


def settle_sold_out(
    menu: MenuIn, current: Mapping[str, ItemIn], tz: ZoneInfo, now: datetime, param: str = ""
) -> MenuIn:
    """Give every sold-out item of a menu about to be written its end, checking the ends given.

    `current` is the items of the menu in force as they read `now` (`menu_at`), by id. A sold-out
    item without an end keeps the end it already has when it is still sold out, else it is sold out
    until the next local midnight of `tz` after `now`. A given end must be in the future, at most
    `SOLD_OUT_MAX_AHEAD` away, and only on a sold-out item. Raises ValidationFailed with the path."""
    p = f"{param}." if param else ""
    tonight = next_local_midnight(tz, now)
    categories = []
    for ci, cat in enumerate(menu.categories):
        items = []
        for ii, item in enumerate(cat.items):
            where = f"{p}categories[{ci}].items[{ii}].sold_out_until"
            until = item.sold_out_until
            if item.availability != "sold_out":
                if until is not None:
                    raise ValidationFailed("only a sold_out item has a sold_out_until", param=where)
            elif until is not None:
                if until <= now:
                    raise ValidationFailed("sold_out_until must be in the future", param=where)
                if until > now + SOLD_OUT_MAX_AHEAD:
                    raise ValidationFailed(f"sold_out_until is at most {SOLD_OUT_MAX_AHEAD.days} days ahead",
                                           param=where)
                item = msgspec.structs.replace(item, sold_out_until=until.astimezone(UTC))
            else:
                before = current.get(item.id or "")
                kept = before.sold_out_until if before is not None and before.availability == "sold_out" else None
                item = msgspec.structs.replace(item, sold_out_until=kept or tonight)
            items.append(item)
        categories.append(msgspec.structs.replace(cat, items=items))
    return MenuIn(categories=categories)


def items_by_id(menu: MenuIn) -> dict[str, ItemIn]:
    return {item.id: item for cat in menu.categories for item in cat.items if item.id is not None}


@dataclass(frozen=True, slots=True)
class IndexedMenu:
    """A prepared menu with items by id, as `resolve_lines` needs it."""

    version: int
    currency: str
    items: Mapping[str, ItemIn]


def index_menu(menu: MenuIn, version: int, currency: str) -> IndexedMenu:
    return IndexedMenu(version, currency, items_by_id(menu))


@dataclass(frozen=True, slots=True)
class CartQuote:
    """What one read gave a quote: the store as a quote sees it, and the cart checked against the
    menu and stock of that same read, at the quote's instant `at`. `lines()` resolves and prices the
    cart (pure, raises the validation errors), so a caller can report the store's state before the
    cart's problems."""

    context: QuoteContext
    menu: IndexedMenu
    stock: Mapping[str, int]
    cart: Sequence[CartLineInput]
    at: datetime

    def lines(self, param: str = "lines") -> list[ResolvedLine]:
        return resolve_lines(self.menu, self.cart, self.stock, param, at=self.at)


def resolve_lines(
    menu: IndexedMenu, lines: Sequence[CartLineInput], stock: Mapping[str, int], param: str = "lines", *,
    at: datetime,
) -> list[ResolvedLine]:
    """Check every line against the menu as it reads at `at` and price it. `stock` holds counts of
    counted items."""
    out = []
    for i, line in enumerate(lines):
        path = f"{param}[{i}]"
        item = menu.items.get(line.item_id)
        availability = None if item is None else availability_at(item, at)
        if item is None or availability == "hidden":
            raise ItemUnavailable(f"no item {line.item_id!r} on this store's menu", param=f"{path}.item_id")
        if availability == "sold_out" or stock.get(line.item_id, line.quantity) < line.quantity:
            raise ItemUnavailable(f"{item.name!r} is sold out", param=f"{path}.item_id")
        options, extra = _resolve_options(item.modifier_groups, line.options, menu.currency, f"{path}.options")
        unit = Money(item.price + extra, menu.currency)
        out.append(ResolvedLine(
            item_id=line.item_id, name=item.name, quantity=line.quantity, unit_price=unit,
            options=list(options), line_total=unit.times(line.quantity),
        ))
    return out


def _resolve_options(
    groups: Sequence[ModifierGroupIn], selected: Sequence[SelectedOption], currency: str, param: str
) -> tuple[tuple[ResolvedOption, ...], int]:
    """Resolved selections at one level and their total price (minor units), checking every rule."""
    where: dict[str, tuple[ModifierGroupIn, OptionIn]] = {
        option.id: (group, option) for group in groups for option in group.options if option.id is not None
    }
    picked: dict[str, int] = {}
    resolved = []
    total = 0
    for j, sel in enumerate(selected):
        spath = f"{param}[{j}]"
        found = where.get(sel.option_id)
        if found is None:
            raise InvalidSelection(f"option {sel.option_id!r} is not offered here", param=f"{spath}.option_id")
        group, option = found
        if sel.option_id in picked:
            raise InvalidSelection(f"option {option.name!r} is selected twice", param=f"{spath}.option_id")
        if not option.available:
            raise ItemUnavailable(f"option {option.name!r} is not available", param=f"{spath}.option_id")
        if sel.quantity > option.max_quantity:
            raise InvalidSelection(
                f"option {option.name!r} allows at most {option.max_quantity}", param=f"{spath}.quantity"
            )
        picked[sel.option_id] = sel.quantity
        nested, nested_total = _resolve_options(option.modifier_groups, sel.options, currency, f"{spath}.options")
        unit = option.price + nested_total
        resolved.append(ResolvedOption(option.id or "", option.name, sel.quantity, Money(unit, currency), nested))
        total += unit * sel.quantity
    for group in groups:
        chosen = sum(picked.get(o.id or "", 0) for o in group.options)
        if not group.min <= chosen <= group.max:
            rule = f"exactly {group.min}" if group.min == group.max else f"{group.min} to {group.max}"
            raise InvalidSelection(f"{group.name!r}: choose {rule} (got {chosen})", param=param)
    return tuple(resolved), total


def apply_item_patch(menu: MenuIn, item_id: str, changes: Mapping[str, object]) -> tuple[MenuIn, ItemIn]:
    """A copy of the menu with one item's fields changed. KeyError when the item is unknown."""
    categories = []
    updated: ItemIn | None = None
    for cat in menu.categories:
        items = []
        for item in cat.items:
            if item.id == item_id:
                item = msgspec.structs.replace(item, **changes)
                updated = item
            items.append(item)
        categories.append(msgspec.structs.replace(cat, items=items))
    if updated is None:
        raise KeyError(item_id)
    return MenuIn(categories=categories), updated
