"""Kiva's sectors with their real shares, their activities, loan uses and the tag vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# fmt: off
# sector -> (share of loans, activities with weights, loan uses); uses keep the real commas.
SECTORS: dict[str, tuple[float, tuple[tuple[str, float], ...], tuple[str, ...]]] = {
    "Agriculture": (27.5, (("Farming", 6), ("Agriculture", 3), ("Pigs", 2), ("Dairy", 1.5),
                           ("Livestock", 1.5), ("Poultry", 1), ("Fishing", 0.5), ("Cattle", 1)), (
        "to buy fertilizers, seeds and pesticides for the farm.",
        "to purchase a dairy cow.",
        "to buy feed, vitamins and piglets to raise.",
        "to pay for labor, fertilizer, and irrigation for the rice field.",
        "to buy a water pump, hoses and a sprayer.",
    )),
    "Food": (20.8, (("Food Production/Sales", 3), ("Fish Selling", 2), ("Fruits & Vegetables", 2),
                    ("Grocery Store", 2), ("Food Stall", 1.5), ("Bakery", 1), ("Cereals", 1),
                    ("Restaurant", 1)), (
        "to buy sacks of rice, sugar, cooking oil and other goods to sell.",
        "to purchase fish, vegetables, and spices for the food stall.",
        "to buy flour, eggs and butter for the bakery.",
        "to buy more \"pan de sal\" ingredients, like flour and yeast.",
    )),
    "Retail": (19.5, (("General Store", 6), ("Retail", 2), ("Cosmetics Sales", 1),
                      ("Shoe Sales", 0.5), ("Mobile Phones", 0.5)), (
        "to purchase more stock like canned goods, soap, and snacks for the sari-sari store.",
        "to buy shoes, bags and accessories to resell.",
        "to add more varieties of products to the store.",
    )),
    "Services": (6.9, (("Beauty Salon", 2), ("Services", 2), ("Tailoring", 1),
                       ("Motorcycle Repair", 0.5), ("Internet Cafe", 0.3)), (
        "to buy a new hair dryer, chairs and supplies for the salon.",
        "to purchase tools and spare parts for the repair shop.",
    )),
    "Personal Use": (5.9, (("Home Appliances", 2), ("Personal Housing Expenses", 1),
                           ("Personal Expenses", 0.5)), (
        "to buy a water filter to provide safe drinking water for the family.",
        "to install a solar lamp, so the children can study at night.",
    )),
    "Education": (5.1, (("Higher education costs", 2), ("Primary/secondary school costs", 1.5),
                        ("Education provider", 0.3)), (
        "to pay tuition fees, books, and uniforms for the children.",
        "to pay for university fees.",
    )),
    "Clothing": (4.7, (("Clothing Sales", 3), ("Sewing", 1), ("Used Clothing", 1)), (
        "to buy fabric, thread and buttons for the tailoring business.",
        "to purchase used clothing, shoes and bags to sell.",
    )),
    "Housing": (4.1, (("Personal Housing Expenses", 3), ("Home Energy", 0.5),
                      ("Property", 0.3)), (
        "to buy cement, iron sheets and bricks to improve the house.",
        "to build a toilet and a clean water tank.",
    )),
    "Transportation": (2.6, (("Motorcycle Transport", 2), ("Taxi", 1), ("Transportation", 1)), (
        "to pay for repairs, tyres and fuel for the motorcycle taxi.",
        "to make a down payment on a tricycle.",
    )),
    "Arts": (1.7, (("Crafts", 2), ("Weaving", 1), ("Embroidery", 0.5)), (
        "to buy yarn, dyes and beads for handicrafts.",
        "to purchase wood, paint and varnish for carvings.",
    )),
    "Health": (1.2, (("Pharmacy", 1), ("Health", 1), ("Medical Clinic", 0.3)), (
        "to buy medicines, vitamins and supplies for the pharmacy.",
    )),
    "Construction": (0.9, (("Construction Supplies", 1), ("Carpentry", 0.5)), (
        "to buy cement, sand, and gravel to sell to builders.",
    )),
    "Manufacturing": (0.6, (("Furniture Making", 1), ("Manufacturing", 0.5)), (
        "to buy raw materials, like wood and glue, for the furniture workshop.",
    )),
    "Wholesale": (0.15, (("Wholesale", 1), ("Goods Distribution", 0.5)), (
        "to buy goods in bulk, like rice, sugar and flour, for resale to small shops.",
    )),
    "Entertainment": (0.15, (("Entertainment", 1), ("Music Discs & Tapes", 0.3)), (
        "to buy speakers, lights and a generator for events.",
    )),
}

TAGS: tuple[tuple[str, float], ...] = (
    ("#Woman Owned Biz", 8), ("user_favorite", 6), ("#Parent", 5), ("#Supporting Family", 4),
    ("#Repeat Borrower", 4), ("#Animals", 3), ("#Eco-friendly", 2), ("#Schooling", 2),
    ("#Elderly", 2), ("volunteer_pick", 2), ("volunteer_like", 2), ("#Single Parent", 1.5),
    ("#Biz Durable Asset", 1.5), ("#Widowed", 1), ("#Health and Sanitation", 1), ("#Vegan", 1),
    ("#Fabrics", 1), ("#Technology", 0.5), ("#Trees", 0.5), ("#First Loan", 1),
    ("#Sustainable Ag", 1), ("#Job Creator", 0.5), ("#Refugee", 0.3), ("#Orphan", 0.2),
    ("#Interesting Photo", 0.5), ("#Inspiring Story", 0.5), ("#Unique", 0.3),
)
# fmt: on


@dataclass(frozen=True)
class SectorTable:
    """Sectors, activities and uses as flat arrays with per-sector slices."""

    names: np.ndarray
    shares: np.ndarray
    activities: np.ndarray
    activity_cdf: np.ndarray
    """Per activity: its sector index plus the cumulative weight within the sector."""
    uses: np.ndarray
    use_start: np.ndarray
    use_count: np.ndarray

    def draw_activities(self, sectors: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """One weighted activity per row of ``sectors`` (sector indices)."""
        # activity_cdf is offset by the sector index, so one search covers every sector.
        return self.activities[np.searchsorted(self.activity_cdf, sectors + uniform, "right")]

    def draw_uses(self, sectors: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """One loan use per row of ``sectors``."""
        counts = self.use_count[sectors]
        return self.uses[self.use_start[sectors] + (uniform * counts).astype(np.int64)]


def load_sectors() -> SectorTable:
    """Index the sector vocabulary."""
    activities: list[str] = []
    cdf: list[float] = []
    uses: list[str] = []
    use_start, use_count = [], []
    for index, (_share, sector_activities, sector_uses) in enumerate(SECTORS.values()):
        weights = np.array([w for _, w in sector_activities])
        activities.extend(name for name, _ in sector_activities)
        within = np.cumsum(weights) / weights.sum()
        within[-1] = 1.0  # rounding must not let a draw spill into the next sector
        cdf.extend((index + within).tolist())
        use_start.append(len(uses))
        use_count.append(len(sector_uses))
        uses.extend(sector_uses)
    shares = np.array([s for s, _, _ in SECTORS.values()])
    return SectorTable(
        names=np.array(list(SECTORS), dtype=object),
        shares=shares / shares.sum(),
        activities=np.array(activities, dtype=object),
        activity_cdf=np.array(cdf),
        uses=np.array(uses, dtype=object),
        use_start=np.array(use_start),
        use_count=np.array(use_count),
    )


def tag_pool(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` tag lists joined with ", " (one to five distinct tags each)."""
    names = [t for t, _ in TAGS]
    weights = np.array([w for _, w in TAGS])
    weights = weights / weights.sum()
    counts = rng.choice([1, 2, 3, 4, 5], size=size, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    pool = [
        ", ".join(names[i] for i in rng.choice(len(names), size=k, replace=False, p=weights))
        for k in counts
    ]
    return np.array(pool, dtype=object)
