"""Borrower first names and group names by region, in the scripts the real loans use.

Spanish titles (``Doña``), accents, Vietnamese diacritics, Cyrillic names from Central Asia
and a few names with a tab inside (as some exported Kiva names have) are all on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# region -> (female names, male names, group names)
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "ph": (
        (
            "Maria",
            "Rosalie",
            "Jocelyn",
            "Marites",
            "Analyn",
            "Lorna",
            "Gemma",
            "Rowena",
            "Marilou",
            "Evangeline",
            "Nenita",
            "Ma. Cristina",
            "Divina",
            "Jovelyn",
        ),
        ("Roberto", "Jun", "Ramil", "Rogelio", "Danilo", "Eduardo", "Arnel", "Rey"),
        ("Bayanihan Group", "Masigasig Group", "Pagasa Group", "Sampaguita Group"),
    ),
    "ea": (
        (
            "Wanjiku",
            "Akinyi",
            "Grace",
            "Mercy",
            "Nafula",
            "Esther",
            "Jane",
            "Atieno",
            "Nakato",
            "Faith",
            "Mary\tWambui",
            "Beatrice",
        ),
        ("Otieno", "Kamau", "Joseph", "Peter", "Mugisha", "Wekesa", "Samuel", "Kiprono"),
        ("Tujiinue Group", "Upendo Women Group", "Umoja Group", "Twekembe Group"),
    ),
    "la": (
        (
            "María",
            "Rosa Elena",
            "Doña Juana",
            "Carmen",
            "Lucía",
            "Marisol",
            "Ana María",
            "Doña Teresa",
            "Gladys",
            "Yolanda",
            "Rosa\tAmelia",
            "Maritza",
            "Flor de María",
        ),
        ("José Luis", "Juan", "Don Julio", "Carlos", "Pedro", "Jesús", "Víctor Hugo", "Nelson"),
        (
            "Grupo Las Rosas",
            "Grupo Mujeres Unidas",
            'Banco Comunal "El Progreso"',
            "Grupo Señor de los Milagros",
        ),
    ),
    "sea": (
        (
            "Nguyễn Thị Hoa",
            "Sokha",
            "Chanthou",
            "Sreymom",
            "Phạm Thị Lan",
            "Dewi",
            "Siti",
            "Sophea",
            "Trần Thị\tMai",
            "Kim",
        ),
        ("Sokhom", "Vuthy", "Nguyễn Văn Hùng", "Budi", "Bunthoeun", "Agus"),
        ("Srey Group", "Khmer Unity Group", "Hòa Bình Group"),
    ),
    "ca": (
        (
            "Гулмире",
            "Зарина",
            "Мадина",
            "Нигора",
            "Гульнара",
            "Saodat",
            "Шахноза",
            "Dilbar",
            "Гулнора\tРахимова",
            "Мавлюда",
        ),
        ("Фарход", "Рустам", "Bakhtiyor", "Алишер", "Ibrohim", "Сухроб"),
        ("Группа «Бахор»", "Группа «Навруз»", "Umed Group"),
    ),
    "sa": (
        ("Shazia", "Rukhsana", "Nasreen", "Lakshmi", "Parveen", "Sunita", "Farzana", "Anjali"),
        ("Muhammad", "Imran", "Ramesh", "Asif", "Tariq", "Bishnu"),
        ("Roshni Group", "Ujala Group"),
    ),
    "wae": (
        ("Abena", "Akosua", "Fatmata", "Ngozi", "Adwoa", "Mariama", "Comfort", "Blessing"),
        ("Kwame", "Mohamed", "Chinedu", "Kofi", "Abu", "Emmanuel"),
        ("Oloye Women Group", "Nyame Bekyere Group", "Sabinatu Group"),
    ),
    "waf": (
        (
            "Aïssata",
            "Fatoumata",
            "Mariam",
            "Adjoa",
            "Kadiatou",
            "Françoise",
            "Amélie",
            "Mamy",
            "Éléonore",
            "Awa",
        ),
        ("Mamadou", "Koffi", "Ousmane", "Jean-Baptiste", "Issa", "Théodore"),
        ("Groupe Solidarité", "Groupement Bénédiction", "Groupe «La Confiance»"),
    ),
    "me": (
        ("Fatima", "Samira", "Amal", "Rania", "Hanan", "Layla", "Mona", "Nour"),
        ("Ahmad", "Khaled", "Mahmoud", "Omar", "Yusuf", "Ali"),
        ("Al-Amal Group", "Nour Group"),
    ),
    "pac": (
        ("Salote", "Mele", "Fiaui", "Lusia", "Tupe", "Maria Goreti", "Seini"),
        ("Tavita", "Sione", "Ioane", "Joao"),
        ("Faleapuna Women's Committee", "Lalomanu Group"),
    ),
    "us": (
        ("Jessica", "Keisha", "Ana", "Tanya", "Michelle", "Jennifer"),
        ("Marcus", "David", "Luis", "Anthony"),
        ("Oakland Bakers Collective", "Detroit Makers"),
    ),
    "eu": (
        ("Olena", "Mirela", "Valentina", "Elena", "Svetlana", "Anna", "Merita"),
        ("Mykola", "Besnik", "Ion", "Dragan", "Serhiy"),
        ("Zora Group", "Nada Group"),
    ),
    "cauc": (
        ("Anahit", "Gohar", "Nino", "Aynur", "Lusine", "Tamar"),
        ("Armen", "Giorgi", "Elchin", "Vahe"),
        ("Hope Group", "Gandzak Group"),
    ),
    "af": (
        ("Chipo", "Tendai", "Nomsa", "Fatima", "Ndapewa", "Lindiwe", "Chikondi"),
        ("Tawanda", "Sipho", "Tatenda", "Jorge"),
        ("Tiyanjane Group", "Simukai Group"),
    ),
}

SEXES = ("female", "male", "group")


@dataclass(frozen=True)
class NameTable:
    """Flat name arrays per sex with each region's slice, for vectorised draws."""

    names: dict[str, np.ndarray]
    starts: dict[str, np.ndarray]
    """sex -> region index -> first position of that region's names."""
    counts: dict[str, np.ndarray]
    region_index: dict[str, int]

    def draw(self, sex: str, regions: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """One name per row of ``regions`` (region indices), chosen by ``uniform`` in [0, 1)."""
        starts = self.starts[sex][regions]
        counts = self.counts[sex][regions]
        return self.names[sex][starts + (uniform * counts).astype(np.int64)]


def load_names() -> NameTable:
    """Index the name vocabulary by sex and region."""
    region_index = {region: i for i, region in enumerate(NAMES)}
    names, starts, counts = {}, {}, {}
    for position, sex in enumerate(SEXES):
        flat: list[str] = []
        sex_starts, sex_counts = [], []
        for lists in NAMES.values():
            sex_starts.append(len(flat))
            sex_counts.append(len(lists[position]))
            flat.extend(lists[position])
        names[sex] = np.array(flat, dtype=object)
        starts[sex] = np.array(sex_starts)
        counts[sex] = np.array(sex_counts)
    return NameTable(names, starts, counts, region_index)
