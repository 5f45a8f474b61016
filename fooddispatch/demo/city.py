"""The demo city, generated from a seed: pure data, no I/O.

Berlin's inner ring (a real metro bounding box): merchants with several stores clustered in
real neighbourhoods, menus with nested modifier groups, delivery zones as GeoJSON polygons,
customers with saved test cards (a few decline, need 3-D Secure or trip the fraud rules) and
couriers with a vehicle and a shift. The same seed and sizes give the same city, byte for byte.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

# Berlin, inside the S-Bahn ring and a little beyond (south, west, north, east).
BBOX = (52.44, 13.26, 52.58, 13.52)
TIMEZONE = "Europe/Berlin"
CURRENCY = "EUR"
TAX_RATE_BPS = 700  # 7 % VAT on food in Germany
REGION = "demo"

NEIGHBOURHOODS = [
    ("Mitte", 52.5200, 13.4050), ("Kreuzberg", 52.4990, 13.4030), ("Prenzlauer Berg", 52.5390, 13.4240),
    ("Friedrichshain", 52.5150, 13.4540), ("Neukölln", 52.4810, 13.4350), ("Charlottenburg", 52.5160, 13.3040),
    ("Schöneberg", 52.4830, 13.3530), ("Wedding", 52.5500, 13.3660), ("Moabit", 52.5300, 13.3420),
]

# Vehicle: simulated cruising speed in m/s (street speed, stops included).
VEHICLE_SPEED = {"bicycle": 4.5, "scooter": 7.0, "car": 8.0}
VEHICLE_MIX = [("bicycle", 6), ("scooter", 3), ("car", 1)]

# Stripe-compatible test cards understood by the payments test processor.
CARD_OK = "4242424242424242"
CARD_DECLINE = "4000000000000002"
CARD_FUNDS = "4000000000009995"
CARD_3DS = "4000002500003155"
CARD_FRAUD = "4100000000000019"
CARD_MIX = [(CARD_OK, 88), (CARD_DECLINE, 4), (CARD_FUNDS, 2), (CARD_3DS, 4), (CARD_FRAUD, 2)]

BRANDS: list[tuple[str, str]] = [
    ("Pizzeria Napoli", "pizza"), ("Burger Bande", "burger"), ("Sushi Kaze", "sushi"),
    ("Bangkok Street", "thai"), ("Kreuzberger Döner", "doner"), ("Grün & Gut", "salad"),
    ("Masala House", "indian"), ("Pho Saigon", "vietnamese"), ("Taqueria Azul", "mexican"),
    ("Falafel Freunde", "levant"),
]

# cuisine -> (dish name, price in cents, dietary tags)
DISHES: dict[str, list[tuple[str, int, list[str]]]] = {
    "pizza": [("Margherita", 850, ["vegetarian"]), ("Diavola", 1050, []), ("Quattro Formaggi", 1150, ["vegetarian"]),
              ("Funghi", 950, ["vegetarian"]), ("Prosciutto e Rucola", 1250, [])],
    "burger": [("Classic Burger", 990, []), ("Cheeseburger", 1090, []), ("Veggie Burger", 1050, ["vegetarian"]),
               ("Chicken Burger", 1090, []), ("BBQ Bacon Burger", 1290, [])],
    "sushi": [("Salmon Maki (8)", 690, []), ("California Roll (8)", 890, []), ("Avocado Maki (8)", 590, ["vegan"]),
              ("Nigiri Set", 1490, []), ("Chirashi Bowl", 1590, [])],
    "thai": [("Pad Thai", 1150, []), ("Green Curry", 1250, ["gluten-free"]), ("Tom Yum Soup", 790, []),
             ("Massaman Curry", 1290, []), ("Papaya Salad", 890, ["vegan"])],
    "doner": [("Döner Kebab", 650, []), ("Dürüm", 750, []), ("Lahmacun", 550, []), ("Falafel Box", 690, ["vegan"]),
              ("Döner Teller", 1190, [])],
    "salad": [("Caesar Salad", 990, []), ("Quinoa Bowl", 1090, ["vegan"]), ("Greek Salad", 950, ["vegetarian"]),
              ("Poke Bowl", 1290, []), ("Soup of the Day", 650, ["vegan"])],
    "indian": [("Butter Chicken", 1290, ["gluten-free"]), ("Palak Paneer", 1150, ["vegetarian"]),
               ("Chana Masala", 990, ["vegan"]), ("Lamb Rogan Josh", 1450, []), ("Samosa (2)", 490, ["vegan"])],
    "vietnamese": [("Pho Bo", 1190, []), ("Bun Cha", 1150, []), ("Banh Mi", 790, []),
                   ("Summer Rolls (4)", 690, ["vegan"]), ("Tofu Curry", 1050, ["vegan"])],
    "mexican": [("Tacos al Pastor (3)", 990, []), ("Burrito", 1090, []), ("Quesadilla", 890, ["vegetarian"]),
                ("Nachos", 790, ["vegetarian"]), ("Bowl Verde", 1050, ["vegan"])],
    "levant": [("Falafel Wrap", 650, ["vegan"]), ("Halloumi Wrap", 750, ["vegetarian"]), ("Shawarma Plate", 1190, []),
               ("Hummus Plate", 850, ["vegan"]), ("Mezze for Two", 1690, ["vegetarian"])],
}
SIDES = [("Fries", 350), ("Sweet Potato Fries", 450), ("Side Salad", 390), ("Garlic Bread", 390)]
DRINKS = [("Cola", 290), ("Lemonade", 320), ("Sparkling Water", 250), ("Mate", 350)]


@dataclass(frozen=True)
class StoreSpec:
    key: str  # stable within the city: "t3s1"
    name: str
    lat: float
    lng: float
    prep_time_s: int
    hours: list[dict[str, Any]]  # HoursIn.periods
    zone: dict[str, Any]  # a GeoJSON Polygon
    max_delivery_m: int
    fee_bands: list[dict[str, int]]
    closed_today: bool  # a special day closes it today: customers who try get the store's error
    accept_rate: float  # share of orders the kitchen accepts


@dataclass(frozen=True)
class TenantSpec:
    key: str
    name: str
    cuisine: str
    menu: dict[str, Any]  # MenuIn
    stores: list[StoreSpec]


@dataclass(frozen=True)
class CustomerSpec:
    key: str
    name: str
    email: str
    lat: float
    lng: float
    address: str
    card: str
    tips: bool
    cancels: float  # probability of cancelling an order soon after placing it


@dataclass(frozen=True)
class CourierSpec:
    key: str
    name: str
    email: str
    vehicle: str
    lat: float
    lng: float
    shift_start_min: int  # simulated minutes after the demo starts
    shift_minutes: int
    accept_rate: float


@dataclass(frozen=True)
class City:
    seed: int
    name: str
    bbox: tuple[float, float, float, float]
    tenants: list[TenantSpec]
    customers: list[CustomerSpec]
    couriers: list[CourierSpec]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stores(self) -> list[StoreSpec]:
        return [store for tenant in self.tenants for store in tenant.stores]


def _weighted(rng: random.Random, choices: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def _near(rng: random.Random, lat: float, lng: float, radius_m: float) -> tuple[float, float]:
    """A point within `radius_m` of (lat, lng), uniform over the disc, clipped to the bounding box."""
    r = radius_m * math.sqrt(rng.random())
    theta = rng.random() * 2 * math.pi
    dlat = r * math.cos(theta) / 111_320
    dlng = r * math.sin(theta) / (111_320 * math.cos(math.radians(lat)))
    south, west, north, east = BBOX
    return (round(min(max(lat + dlat, south), north), 6), round(min(max(lng + dlng, west), east), 6))


def zone_polygon(rng: random.Random, lat: float, lng: float, radius_m: float, vertices: int = 14) -> dict[str, Any]:
    """A star-convex polygon around the store (radius jittered ±20 % per vertex): valid by construction."""
    ring = []
    for i in range(vertices):
        theta = 2 * math.pi * i / vertices
        r = radius_m * rng.uniform(0.8, 1.2)
        dlat = r * math.cos(theta) / 111_320
        dlng = r * math.sin(theta) / (111_320 * math.cos(math.radians(lat)))
        ring.append([round(lng + dlng, 6), round(lat + dlat, 6)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _hours(rng: random.Random) -> list[dict[str, Any]]:
    """Most kitchens cook all day so the demo is alive at any hour; some split lunch and a dinner that
    runs past midnight (a period crossing midnight), and are open at night too via a late period."""
    if rng.random() < 0.7:
        return [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
    periods = []
    for d in range(7):
        periods.append({"weekday": d, "opens": "00:00", "closes": "15:00"})
        periods.append({"weekday": d, "opens": "16:00", "closes": "00:00"})
    return periods


def _menu(rng: random.Random, cuisine: str) -> dict[str, Any]:
    dishes = DISHES[cuisine]
    size = {"name": "Size", "min": 1, "max": 1, "options": [
        {"name": "Regular", "price": 0}, {"name": "Large", "price": rng.choice([150, 200, 250])}]}
    extras = {"name": "Extras", "min": 0, "max": 3, "options": [
        {"name": name, "price": price, "max_quantity": 2}
        for name, price in [("Extra cheese", 100), ("Chili", 50), ("Avocado", 150), ("Jalapeños", 80)]]}
    # Three levels: item -> "Make it a meal" -> "Meal" -> "Drink" -> "Cola" -> "Ice".
    ice = {"name": "Ice", "min": 0, "max": 1, "options": [{"name": "No ice"}, {"name": "Extra ice"}]}
    drink = {"name": "Drink", "min": 1, "max": 1, "options": [
        {"name": name, "price": 0 if i == 0 else 50, "modifier_groups": [ice]} for i, (name, _p) in enumerate(DRINKS)]}
    meal = {"name": "Make it a meal", "min": 0, "max": 1, "options": [
        {"name": "Meal (side + drink)", "price": 450, "modifier_groups": [drink]}]}
    mains = []
    for i, (name, price, tags) in enumerate(dishes):
        groups = [size, extras] if i % 2 == 0 else [extras, meal]
        if i == 0:
            groups = [size, extras, meal]
        mains.append({"name": name, "price": price + rng.choice([0, 0, 50, 100]), "dietary_tags": tags,
                      "description": f"House {name.lower()}, made to order.", "modifier_groups": groups})
    sides = [{"name": name, "price": price, "modifier_groups": [
        {"name": "Dip", "min": 0, "max": 2, "options": [{"name": "Ketchup", "price": 0}, {"name": "Aioli", "price": 60},
                                                        {"name": "Sriracha mayo", "price": 60}]}]}
             for name, price in rng.sample(SIDES, 3)]
    drinks = [{"name": name, "price": price} for name, price in DRINKS]
    return {"categories": [{"name": "Mains", "items": mains}, {"name": "Sides", "items": sides},
                           {"name": "Drinks", "items": drinks}]}


def generate_city(seed: int, restaurants: int = 12, couriers: int = 20, customers: int = 60) -> City:
    """`restaurants` stores spread over tenants of 1-4 stores each."""
    rng = random.Random(seed)
    tenants: list[TenantSpec] = []
    remaining = max(restaurants, 1)
    t = 0
    while remaining > 0:
        brand, cuisine = BRANDS[t % len(BRANDS)]
        name = brand if t < len(BRANDS) else f"{brand} {t // len(BRANDS) + 1}"
        count = min(remaining, rng.randint(1, 4))
        stores = []
        # Each of a merchant's stores in its own neighbourhood: the name says which one it is.
        for s, (hood, hlat, hlng) in enumerate(rng.sample(NEIGHBOURHOODS, count)):
            lat, lng = _near(rng, hlat, hlng, 900)
            radius = rng.choice([2500, 3000, 3500])
            stores.append(StoreSpec(
                key=f"t{t}s{s}", name=f"{name} {hood}", lat=lat, lng=lng,
                prep_time_s=rng.choice([420, 600, 720, 900]), hours=_hours(rng),
                zone=zone_polygon(rng, lat, lng, radius), max_delivery_m=int(radius * 1.3),
                fee_bands=[{"up_to_m": 1500, "fee": 199}, {"up_to_m": 3000, "fee": 299},
                           {"up_to_m": int(radius * 1.3), "fee": 399}],
                closed_today=False, accept_rate=rng.choice([0.93, 0.96, 0.98]),
            ))
        tenants.append(TenantSpec(key=f"t{t}", name=name, cuisine=cuisine, menu=_menu(rng, cuisine), stores=stores))
        remaining -= count
        t += 1
    # One store in ten (at least one when there are four or more) is closed today.
    all_stores = [(ti, si) for ti, tenant in enumerate(tenants) for si in range(len(tenant.stores))]
    closed = rng.sample(all_stores, len(all_stores) // 10 if len(all_stores) >= 10 else min(1, len(all_stores) // 4))
    for ti, si in closed:
        store = tenants[ti].stores[si]
        tenants[ti].stores[si] = StoreSpec(**{**store.__dict__, "closed_today": True})

    first = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Lea", "Lukas", "Mia",
             "Noah", "Paul", "Sofia", "Tim", "Yusuf", "Zeynep", "Marta", "Kenji", "Ola", "Priya", "Luca", "Nina"]
    last = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Yilmaz", "Nowak",
            "Kowalski", "Rossi", "Nguyen", "Tanaka", "Okafor", "Singh"]
    streets = ["Torstraße", "Oranienstraße", "Kastanienallee", "Boxhagener Str.", "Weserstraße", "Kantstraße",
               "Goltzstraße", "Müllerstraße", "Turmstraße", "Sonnenallee", "Danziger Str.", "Bergmannstraße"]
    # Customers live near a store that is open today: one whose only store nearby is closed would
    # find nothing to order and, idle again at once, be picked again and again.
    open_today = [s for tenant in tenants for s in tenant.stores if not s.closed_today]
    store_points = [(s.lat, s.lng) for s in open_today or [s for t in tenants for s in t.stores]]
    people = []
    for c in range(customers):
        slat, slng = rng.choice(store_points)
        lat, lng = _near(rng, slat, slng, 1800)
        name = f"{rng.choice(first)} {rng.choice(last)}"
        people.append(CustomerSpec(
            key=f"c{c}", name=name, email=f"customer{c}.s{seed}@demo.fooddispatch.test", lat=lat, lng=lng,
            address=f"{rng.choice(streets)} {rng.randint(1, 180)}, Berlin", card=_weighted(rng, CARD_MIX),
            tips=rng.random() < 0.4, cancels=0.05,
        ))
    riders = []
    taken: set[str] = set()
    for k in range(couriers):
        hood, hlat, hlng = rng.choice(NEIGHBOURHOODS)
        lat, lng = _near(rng, hlat, hlng, 1200)
        riders.append(CourierSpec(
            key=f"k{k}", name=_courier_name(rng.choice(first), rng.choice(last), taken),
            email=f"courier{k}.s{seed}@demo.fooddispatch.test", vehicle=_weighted(rng, VEHICLE_MIX),
            lat=lat, lng=lng, shift_start_min=0 if k < max(1, couriers * 3 // 4) else rng.choice([10, 20, 30]),
            shift_minutes=rng.choice([240, 360, 480]), accept_rate=rng.choice([0.85, 0.9, 0.95, 1.0]),
        ))
    return City(seed=seed, name="Berlin", bbox=BBOX, tenants=tenants, customers=people, couriers=riders)


def _courier_name(first: str, last: str, taken: set[str]) -> str:
    """"Mia W.", as courier apps show a courier; the whole last name (then a number) when another
    courier of the city already goes by it, so an operator can tell them apart."""
    name = f"{first} {last[0]}."
    if name in taken:
        name = f"{first} {last}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base} {n}"
    taken.add(name)
    return name


def inside_bbox(lat: float, lng: float, bbox: tuple[float, float, float, float] = BBOX) -> bool:
    south, west, north, east = bbox
    return south <= lat <= north and west <= lng <= east
