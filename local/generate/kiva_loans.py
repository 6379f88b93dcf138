"""kiva_loans rows: the 31 columns of the Kiva snapshot with its shares and its quirks.

Every column is drawn for a whole block at once with numpy; the only per-row Python work
is putting the borrower's name into the story and zipping the columns into rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from local.generate import loan_book
from local.generate.dirty import DirtyTargets
from local.generate.geography import Countries, load_countries
from local.generate.names import SEXES, NameTable, load_names
from local.generate.sectors import SectorTable, load_sectors, tag_pool
from local.generate.stories import LANGUAGES, StoryPool, build_story_pool
from local.generate.timefmt import epoch_seconds, kiva_timestamps

DATASET = "kiva_loans"
HEADER = (
    "loan_id", "loan_name", "original_language", "description", "description_translated",
    "funded_amount", "loan_amount", "status", "activity_name", "sector_name", "loan_use",
    "country_code", "country_name", "town_name", "currency_policy",
    "currency_exchange_coverage_rate", "currency", "partner_id", "posted_time",
    "planned_expiration_time", "disburse_time", "raised_time", "lender_term",
    "num_lenders_total", "num_journal_entries", "num_bulk_entries", "tags",
    "borrower_genders", "borrower_pictured", "repayment_interval", "distribution_model",
)  # fmt: skip

DIRTY_TARGETS = DirtyTargets(
    numeric=("loan_id", "funded_amount", "loan_amount", "currency_exchange_coverage_rate",
             "partner_id", "lender_term", "num_lenders_total", "num_journal_entries",
             "num_bulk_entries"),
    timestamps=("posted_time", "planned_expiration_time", "disburse_time", "raised_time"),
    allowed=("status", "currency_policy", "repayment_interval", "distribution_model"),
    not_nullable=("loan_id", "funded_amount", "loan_amount", "status", "sector_name",
                  "posted_time"),
)  # fmt: skip

STREAM_VOCABULARY, STREAM_COLUMNS = 2, 3
DAY = 86_400
# Loans posted per year (relative), so monthly summaries show Kiva's growth 2005-2018.
_GROWTH = ((2005, 0.3), (2006, 1.5), (2007, 2.5), (2008, 4.5), (2009, 6), (2010, 7.5),
           (2011, 8.5), (2012, 10), (2013, 10.5), (2014, 12), (2015, 13), (2016, 14),
           (2017, 15), (2018, 3.5))  # fmt: skip
_FIRST_POST, _LAST_POST = "2005-04-15", "2018-03-31"
_NO_EXPIRATION_BEFORE = epoch_seconds("2011-01-01")  # older loans never had one
_TAGS_SINCE = epoch_seconds("2013-06-01")
_LENDER_TERMS = ((3, 0.5), (4, 0.5), (5, 1), (6, 4), (7, 5), (8, 12), (9, 5), (10, 5), (11, 6),
                 (12, 14), (13, 7), (14, 18), (15, 4), (16, 2), (17, 2), (18, 3), (20, 3),
                 (24, 2), (26, 1.5), (36, 1), (50, 0.3), (60, 0.2), (195, 0.005))  # fmt: skip
_INTERVALS = np.array(["monthly", "irregular", "bullet", "weekly"], dtype=object)
_AMOUNT_TEXT = np.array([f"{k * 25}.0" for k in range(100_000 // 25 + 400)], dtype=object)
_INT_TEXT = np.array([str(k) for k in range(loan_book.MAX_LENDERS + 1)], dtype=object)
_MAX_GROUP = 30
_NO_USE = "to grow the business."


@dataclass(frozen=True)
class _Vocabulary:
    countries: Countries
    names: NameTable
    sectors: SectorTable
    stories: StoryPool
    tags: np.ndarray
    women: np.ndarray
    """Borrower gender lists of k women, by k."""
    mixed: np.ndarray
    mixed_sizes: np.ndarray
    pictured: np.ndarray
    """[k, variant]: k pictured flags; variant 0 is all true."""
    country_language: np.ndarray
    """Index into LANGUAGES of each country's own language."""
    country_region: np.ndarray
    """Index of each country's name region."""
    namibia: int
    post_cdf: np.ndarray
    post_seconds: np.ndarray


def iter_row_blocks(rows: int, seed: int) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """(loans done so far, rows) per block of ``rows`` loans."""
    vocabulary = _build_vocabulary(seed)
    for block in loan_book.iter_loan_blocks(rows, seed):
        rng = np.random.default_rng([seed, STREAM_COLUMNS, block.index])
        done = block.first_row + len(block.loan_ids)
        yield done, _block_rows(block, rows, rng, vocabulary)


def _build_vocabulary(seed: int) -> _Vocabulary:
    rng = np.random.default_rng([seed, STREAM_VOCABULARY])
    women = np.array(["", *(", ".join(["female"] * k) for k in range(1, _MAX_GROUP + 1))])
    mixed_sizes = rng.integers(2, 12, 512)
    mixed = []
    for k in mixed_sizes:
        men = int(rng.integers(1, k))
        genders = ["female"] * (k - men) + ["male"] * men
        mixed.append(", ".join(rng.permutation(genders).tolist()))
    pictured = np.empty((_MAX_GROUP + 1, 4), dtype=object)
    for k in range(_MAX_GROUP + 1):
        pictured[k, 0] = ", ".join(["true"] * k)
        for variant in range(1, 4):
            flags = rng.random(k) < 0.7
            pictured[k, variant] = ", ".join("true" if f else "false" for f in flags)
    years = np.array([y for y, _ in _GROWTH])
    weights = np.array([w for _, w in _GROWTH])
    edges = [epoch_seconds(_FIRST_POST)]
    edges += [epoch_seconds(f"{y}-01-01") for y in years[1:]] + [epoch_seconds(_LAST_POST)]
    countries = load_countries()
    names = load_names()
    return _Vocabulary(
        countries=countries,
        names=names,
        sectors=load_sectors(),
        stories=build_story_pool(rng),
        tags=tag_pool(rng, 2048),
        women=np.array(women, dtype=object),
        mixed=np.array(mixed, dtype=object),
        mixed_sizes=mixed_sizes,
        pictured=pictured,
        country_language=np.array([LANGUAGES.index(x) for x in countries.languages]),
        country_region=np.array([names.region_index[r] for r in countries.regions]),
        namibia=countries.codes.tolist().index("NA"),
        post_cdf=np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]),
        post_seconds=np.array(edges, dtype=np.float64),
    )


def _block_rows(
    block: loan_book.LoanBlock, total_rows: int, rng: np.random.Generator, v: _Vocabulary
) -> list[tuple[str, ...]]:
    size = len(block.loan_ids)
    c = v.countries
    country = rng.choice(len(c.codes), size=size, p=c.weights)
    # Namibia is rare (0.03%) but its code "NA" is the trap every file must carry.
    place = int(rng.integers(size))
    if not (country == v.namibia).any():
        country[place] = v.namibia
    sector = rng.choice(len(v.sectors.names), size=size, p=v.sectors.shares)
    name, genders, pictured, story_sex = _borrowers(country, rng, v)
    uses = v.sectors.draw_uses(sector, rng.random(size))
    uses[rng.random(size) < 0.01] = ""
    native = v.country_language[country]
    language = np.where(rng.random(size) < 0.85, native, 0)
    description, translated = _descriptions(name, uses, language, story_sex, rng, v)
    direct = rng.random(size) < np.where(c.codes[country] == "US", 0.85, 0.003)
    partner = c.partners[c.partner_start[country] + _below(c.partner_count[country], rng)]
    shared = ~direct & (rng.random(size) < 0.87)
    coverage = rng.choice(np.array(["0.1", "0.2", "0.0"], dtype=object), size, p=[0.9, 0.06, 0.04])
    town = c.towns[c.town_start[country] + _below(c.town_count[country], rng)]
    posted, expiration, disburse, raised = _times(block, total_rows, rng, v)
    terms = rng.choice([t for t, _ in _LENDER_TERMS], size, p=_shares(_LENDER_TERMS))
    tags = v.tags[rng.integers(0, len(v.tags), size)]
    untagged = (rng.random(size) < 0.3) | ((posted < _TAGS_SINCE) & (rng.random(size) < 0.97))
    interval = rng.choice(_INTERVALS, size, p=[0.47, 0.429, 0.1, 0.001])
    journal = np.minimum(rng.poisson(1.2, size) + (block.status == loan_book.FUNDED), 3000)
    columns = (
        [str(i) for i in block.loan_ids.tolist()],
        name,
        np.array(LANGUAGES, dtype=object)[language],
        description,
        translated,
        _AMOUNT_TEXT[(block.funded_amount // 25).astype(np.int64)],
        _AMOUNT_TEXT[(block.loan_amount // 25).astype(np.int64)],
        np.array(loan_book.STATUSES, dtype=object)[block.status],
        v.sectors.draw_activities(sector, rng.random(size)),
        v.sectors.names[sector],
        uses,
        c.codes[country],
        c.names[country],
        np.where(rng.random(size) < 0.08, "", town),
        np.where(shared, "shared", "standard"),
        np.where(shared, coverage, ""),
        np.where(rng.random(size) < c.usd_share[country], "USD", c.currencies[country]),
        np.where(direct, "", partner),
        kiva_timestamps(posted),
        kiva_timestamps(expiration),
        kiva_timestamps(disburse),
        kiva_timestamps(raised),
        _INT_TEXT[terms],
        _INT_TEXT[block.num_lenders],
        _INT_TEXT[journal],
        _INT_TEXT[np.minimum(rng.poisson(0.9, size), 3000)],
        np.where(untagged, "", tags),
        genders,
        pictured,
        np.where(direct, "monthly", interval),
        np.where(direct, "direct", "field_partner"),
    )
    texts = (column if isinstance(column, list) else column.tolist() for column in columns)
    return list(zip(*texts, strict=True))


def _borrowers(
    country: np.ndarray, rng: np.random.Generator, v: _Vocabulary
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loan name, borrower_genders, borrower_pictured and the story's sex index per row."""
    size = len(country)
    # single woman 66%, single man 17%, several women 10%, mixed group 7%
    kind = rng.choice(4, size=size, p=[0.66, 0.17, 0.10, 0.07])
    region = v.country_region[country]
    pick = rng.random(size)
    named_group = (kind >= 2) & (rng.random(size) < 0.45)
    name = np.where(
        kind == 1, v.names.draw("male", region, pick), v.names.draw("female", region, pick)
    )
    name = np.where(named_group, v.names.draw("group", region, pick), name)
    story_sex = np.where(kind == 1, SEXES.index("male"), SEXES.index("female"))
    story_sex[named_group] = SEXES.index("group")
    women = np.minimum(1 + rng.geometric(0.25, size), _MAX_GROUP)
    mixed = rng.integers(0, len(v.mixed), size)
    genders = np.where(kind == 0, "female", "male").astype(object)
    genders[kind == 2] = v.women[women[kind == 2]]
    genders[kind == 3] = v.mixed[mixed[kind == 3]]
    count = np.where(kind <= 1, 1, np.where(kind == 2, women, v.mixed_sizes[mixed]))
    variant = np.where(rng.random(size) < 0.93, 0, rng.integers(1, 4, size))
    pictured = v.pictured[count, variant]
    unknown = rng.random(size) < 0.004
    genders[unknown] = ""
    pictured[unknown] = ""
    return name, genders, pictured, story_sex


def _descriptions(
    name: np.ndarray,
    uses: np.ndarray,
    language: np.ndarray,
    story_sex: np.ndarray,
    rng: np.random.Generator,
    v: _Vocabulary,
) -> tuple[list[str], list[str]]:
    """The row's story (with its name and use filled in) and its English translation."""
    picked = v.stories.draw(language, story_sex, rng.random(len(name)))
    blank = (rng.random(len(name)) < 0.003).tolist()
    descriptions, translations = [], []
    for story, english, who, use, empty in zip(
        v.stories.originals[picked].tolist(),
        v.stories.translations[picked].tolist(),
        name.tolist(),
        uses.tolist(),
        blank,
        strict=True,
    ):
        if empty:
            descriptions.append("")
            translations.append("")
            continue
        descriptions.append(story.replace("{name}", who).replace("{use}", use or _NO_USE))
        translations.append(english.replace("{name}", who) if english else "")
    return descriptions, translations


def _times(
    block: loan_book.LoanBlock, total_rows: int, rng: np.random.Generator, v: _Vocabulary
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """posted, planned expiration, disbursement and raised times (epoch seconds; -1: empty)."""
    size = len(block.loan_ids)
    # Posted time follows the loan's position, so ids and dates rise together.
    position = (block.first_row + np.arange(size) + rng.random(size)) / max(total_rows, 1)
    posted = np.interp(position, v.post_cdf, v.post_seconds).astype(np.int64)
    days = rng.choice([30, 35, 40, 45], size, p=[0.7, 0.1, 0.1, 0.1])
    expiration = posted + days * DAY
    no_expiration = (posted < _NO_EXPIRATION_BEFORE) | (rng.random(size) < 0.065)
    expiration[no_expiration] = -1
    # Field partners mostly disburse before posting; 3% disburse after expiry (contradictory).
    shift = np.where(
        rng.random(size) < 0.75,
        -rng.integers(3, 46, size),
        np.where(rng.random(size) < 0.88, rng.integers(1, 30, size), rng.integers(46, 91, size)),
    )
    hour = rng.choice([7, 8, 5, 16], size, p=[0.46, 0.46, 0.04, 0.04])
    disburse = (posted // DAY + shift) * DAY + hour * 3600
    pending = block.status == loan_book.FUND_RAISING
    disburse[(pending & (rng.random(size) < 0.7)) | (rng.random(size) < 0.002)] = -1
    to_fund = np.minimum(np.exp(rng.normal(np.log(5 * DAY), 1.2, size)), 29.9 * DAY)
    raised = posted + to_fund.astype(np.int64)
    early = rng.random(size) < 0.003
    raised[early] = posted[early] - rng.integers(60, 6 * 3600, size)[early]
    status = block.status
    raised[(status == loan_book.EXPIRED) | (status == loan_book.FUND_RAISING)] = -1
    return posted, expiration, disburse, raised


def _below(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform integer in [0, count) per row."""
    return (rng.random(len(counts)) * counts).astype(np.int64)


def _shares(table: tuple[tuple[int, float], ...]) -> np.ndarray:
    weights = np.array([w for _, w in table], dtype=np.float64)
    return weights / weights.sum()
