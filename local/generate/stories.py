# ruff: noqa: E501  (sentence tables are data, one sentence per line)
"""Borrower stories: multi-paragraph descriptions in English, Spanish, French and Russian.

Each story is assembled from aligned sentence tables, so a Spanish description and its
English ``description_translated`` say the same thing. Stories keep ``{name}`` (and, in
English originals, ``{use}``) as placeholders that the row fills in. The paragraphs are
separated the ways real exports do it (newlines inside the quoted field, ``<br />``, CRLF),
with HTML tags, ``&amp;`` entities and embedded double quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANGUAGES = ("English", "Spanish", "French", "Russian")
SEXES = ("female", "male", "group")

# fmt: off
# Per language, per sex: intro sentences (aligned by position across languages).
_INTRO = {
    "English": {
        "female": ("{name} is {age} years old and lives with her husband and {kids} children.",
                   "{name} is a {age}-year-old mother of {kids} who lives in a rural community."),
        "male": ("{name} is {age} years old and lives with his wife and {kids} children.",
                 "{name} is a {age}-year-old father of {kids} who lives in a rural community."),
        "group": ("{name} is a group of neighbours who meet every week to save together.",
                  "The members of {name} have known each other for many years."),
    },
    "Spanish": {
        "female": ("{name} tiene {age} años y vive con su esposo y sus {kids} hijos.",
                   "{name} es una madre de {kids} hijos de {age} años que vive en una comunidad rural."),
        "male": ("{name} tiene {age} años y vive con su esposa y sus {kids} hijos.",
                 "{name} es un padre de {kids} hijos de {age} años que vive en una comunidad rural."),
        "group": ("{name} es un grupo de vecinas y vecinos que se reúnen cada semana para ahorrar.",
                  "Las integrantes de {name} se conocen desde hace muchos años."),
    },
    "French": {
        "female": ("{name} a {age} ans et vit avec son mari et leurs {kids} enfants.",
                   "{name} est une mère de {kids} enfants âgée de {age} ans qui vit en milieu rural."),
        "male": ("{name} a {age} ans et vit avec sa femme et leurs {kids} enfants.",
                 "{name} est un père de {kids} enfants âgé de {age} ans qui vit en milieu rural."),
        "group": ("{name} est un groupe de voisins qui se réunissent chaque semaine pour épargner.",
                  "Les membres de {name} se connaissent depuis de nombreuses années."),
    },
    "Russian": {
        "female": ("{name} — {age} {age_word}, она замужем. У неё {kids} {kids_word}.",
                   "{name} живёт в сельской местности вместе с семьёй. Ей {age} {age_word}."),
        "male": ("{name} — {age} {age_word}, он женат. У него {kids} {kids_word}.",
                 "{name} живёт в сельской местности вместе с семьёй. Ему {age} {age_word}."),
        "group": ("{name} — это группа соседей, которые встречаются каждую неделю.",
                  "Участники группы {name} знают друг друга много лет."),
    },
}

_TRADES = {
    "English": ("selling vegetables at the local market", "raising pigs and chickens",
                "running a small general store", "farming rice, maize and beans",
                "sewing clothes and school uniforms", "preparing and selling food",
                "driving a motorcycle taxi", "selling cosmetics &amp; household goods"),
    "Spanish": ("la venta de verduras en el mercado local", "la crianza de cerdos y gallinas",
                "la atención de una pequeña tienda de abarrotes", "el cultivo de arroz, maíz y frijoles",
                "la confección de ropa y uniformes escolares", "la preparación y venta de comida",
                "el transporte en mototaxi", "la venta de cosméticos y artículos para el hogar"),
    "French": ("la vente de légumes au marché local", "l'élevage de porcs et de poulets",
               "la gestion d'une petite boutique", "la culture du riz, du maïs et des haricots",
               "la couture de vêtements et d'uniformes scolaires", "la préparation et la vente de repas",
               "la conduite d'un moto-taxi", "la vente de cosmétiques &amp; d'articles ménagers"),
    "Russian": ("продажей овощей на местном рынке", "разведением свиней и кур",
                "управлением небольшим магазином", "выращиванием риса, кукурузы и фасоли",
                "пошивом одежды и школьной формы", "приготовлением и продажей еды",
                "перевозкой пассажиров на мототакси", "продажей косметики и товаров для дома"),
}

_BUSINESS = {
    "English": {"female": "She has been {trade} for {years} years.",
                "male": "He has been {trade} for {years} years.",
                "group": "Its members have been {trade} for {years} years."},
    "Spanish": {"female": "Ella se dedica a {trade} desde hace {years} años.",
                "male": "Él se dedica a {trade} desde hace {years} años.",
                "group": "Sus integrantes se dedican a {trade} desde hace {years} años."},
    "French": {"female": "Elle s'occupe de {trade} depuis {years} ans.",
               "male": "Il s'occupe de {trade} depuis {years} ans.",
               "group": "Ses membres s'occupent de {trade} depuis {years} ans."},
    "Russian": {"female": "Она занимается {trade} с {since} года.",
                "male": "Он занимается {trade} с {since} года.",
                "group": "Члены группы занимаются {trade} с {since} года."},
}

_PURPOSE = {
    "English": ("{name} is requesting a loan {use}", "With this loan, {name} plans {use}"),
    "English-generic": ("{name} is requesting a loan to buy more merchandise and grow the business.",
                        "With this loan, {name} plans to invest in the business and increase income."),
    "Spanish": ("{name} solicita un préstamo para comprar más mercadería y ampliar su negocio.",
                "Con este préstamo, {name} planea invertir en su negocio y mejorar sus ingresos."),
    "French": ("{name} demande un prêt pour acheter plus de marchandises et développer son activité.",
               "Grâce à ce prêt, {name} prévoit d'investir dans son activité et d'augmenter ses revenus."),
    "Russian": ("{name} просит кредит, чтобы закупить больше товара и расширить своё дело.",
                "С помощью этого кредита {name} планирует вложить деньги в дело и увеличить доход."),
}

_QUOTES = {
    "English": ("My dream is to send my children to university.",
                "I want to build a better house for my family.",
                "With hard work, everything is possible.", "Thank you, lenders, for believing in me!"),
    "Spanish": ("Mi sueño es que mis hijos vayan a la universidad.",
                "Quiero construir una casa mejor para mi familia.",
                "Con trabajo, todo es posible.", "¡Gracias, prestamistas, por creer en mí!"),
    "French": ("Mon rêve est d'envoyer mes enfants à l'université.",
               "Je veux construire une meilleure maison pour ma famille.",
               "Avec du travail, tout est possible.", "Merci aux prêteurs de croire en moi !"),
    "Russian": ("Моя мечта — дать детям высшее образование.", "Я хочу построить для семьи дом получше.",
                "Трудом можно добиться всего.", "Спасибо кредиторам за доверие!"),
}

_SAYS = {
    "English": {"female": 'She says: "{quote}"', "male": 'He says: "{quote}"', "group": 'They say: "{quote}"'},
    "Spanish": {"female": 'Ella dice: "{quote}"', "male": 'Él dice: "{quote}"', "group": 'Ellas dicen: "{quote}"'},
    "French": {"female": 'Elle dit : "{quote}"', "male": 'Il dit : "{quote}"', "group": 'Elles disent : "{quote}"'},
    "Russian": {"female": "Она говорит: «{quote}»", "male": "Он говорит: «{quote}»", "group": "Они говорят: «{quote}»"},
}

_CLOSING = {
    "English": ("<i>{name} works with a local partner &amp; has already repaid {prev} loans.</i>",
                "This is loan number {order} with the organization. <b>Good luck!</b>",
                "Families here lack access to banks, so loans like this one help them save, pay school fees and cope with emergencies."),
    "Spanish": ("<i>{name} trabaja con una institución local &amp; ya pagó {prev} préstamos.</i>",
                "Este es el préstamo número {order} con la institución. <b>¡Éxitos!</b>",
                "Aquí las familias no tienen acceso a bancos, por eso préstamos como este les ayudan a ahorrar, pagar la escuela y enfrentar emergencias."),
    "French": ("<i>{name} travaille avec un partenaire local &amp; a déjà remboursé {prev} prêts.</i>",
               "C'est le prêt numéro {order} avec l'institution. <b>Bonne chance !</b>",
               "Ici, les familles n'ont pas accès aux banques : des prêts comme celui-ci les aident à épargner, payer l'école et faire face aux urgences."),
    "Russian": ("<i>{name} сотрудничает с местной организацией &amp; уже погасил(а) {prev} кредита.</i>",
                "Это кредит номер {order} в организации. <b>Удачи!</b>",
                "У местных семей нет доступа к банкам, поэтому такие кредиты помогают им копить, платить за учёбу и справляться с бедами."),
}
# fmt: on

# How paragraphs are separated, with the share of stories using each.
_SEPARATORS = (("\n\n", 0.55), ("<br /><br />", 0.33), ("\r\n\r\n", 0.05), ("\n", 0.07))


@dataclass(frozen=True)
class StoryPool:
    """Pre-rendered stories per (language, sex): originals and their English translations."""

    originals: np.ndarray
    translations: np.ndarray
    """English translation of each original; empty for English originals."""
    starts: np.ndarray
    """(language index, sex index) -> first position of that pool."""
    size: int

    def draw(self, languages: np.ndarray, sexes: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Positions of one story per row, matching each row's language and sex."""
        return self.starts[languages, sexes] + (uniform * self.size).astype(np.int64)


def build_story_pool(rng: np.random.Generator, size: int = 96) -> StoryPool:
    """``size`` stories for each language and sex, assembled from aligned sentences."""
    originals: list[str] = []
    translations: list[str] = []
    starts = np.zeros((len(LANGUAGES), len(SEXES)), dtype=np.int64)
    sep_texts = [s for s, _ in _SEPARATORS]
    sep_shares = np.array([p for _, p in _SEPARATORS])
    for li, language in enumerate(LANGUAGES):
        for si, sex in enumerate(SEXES):
            starts[li, si] = len(originals)
            for _ in range(size):
                picks = _pick(rng)
                separator = sep_texts[rng.choice(len(sep_texts), p=sep_shares / sep_shares.sum())]
                originals.append(_render(language, sex, picks, separator, original=True))
                english = language == "English"
                translations.append(
                    "" if english else _render("English", sex, picks, separator, original=False)
                )
    return StoryPool(
        np.array(originals, dtype=object), np.array(translations, dtype=object), starts, size
    )


def _pick(rng: np.random.Generator) -> dict[str, int]:
    years = int(rng.integers(1, 26))
    return {
        "intro_i": int(rng.integers(2)),
        "trade_i": int(rng.integers(len(_TRADES["English"]))),
        "purpose_i": int(rng.integers(2)),
        "quote_i": int(rng.integers(len(_QUOTES["English"]))),
        "closing_i": int(rng.integers(-1, 3)),  # -1: no closing paragraph
        "age": int(rng.integers(19, 69)),
        "kids": int(rng.integers(2, 8)),
        "years": years,
        "since": 2017 - years,
        "prev": int(rng.integers(2, 9)),
        "order": int(rng.integers(2, 12)),
    }


def _render(language: str, sex: str, p: dict[str, int], separator: str, original: bool) -> str:
    fill = {**p, "age_word": _russian_years(p["age"]), "kids_word": _russian_children(p["kids"])}
    intro = _INTRO[language][sex][p["intro_i"]].format(name="{name}", **fill)
    trade = _TRADES[language][p["trade_i"]]
    business = _BUSINESS[language][sex].format(trade=trade, **fill)
    # Only English originals carry the row's own loan use; translations stay generic.
    purpose = _PURPOSE[language if original else "English-generic"][p["purpose_i"]]
    says = _SAYS[language][sex].format(quote=_QUOTES[language][p["quote_i"]])
    paragraphs = [f"{intro} {business}", f"{purpose} {says}"]
    if p["closing_i"] >= 0:
        paragraphs.append(_CLOSING[language][p["closing_i"]].format(name="{name}", **fill))
    return separator.join(paragraphs)


def _russian_years(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return "год"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "года"
    return "лет"


def _russian_children(n: int) -> str:
    return "ребёнка" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "детей"
