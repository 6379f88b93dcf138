# ruff: noqa: E501  (the country table is data: one country per line)
"""Kiva's countries: code, name, currency, loan share, name region, language and towns.

Weights are loan counts close to the real snapshot (Philippines 285,336, Kenya 143,699, ...),
so the top countries and the long tail of countries with a single loan come out as in the
real file. Towns keep the real file's quirks: commas inside names and trailing spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# code|name|currency|loans|name region|language|towns (";"-separated, may hold commas)
_COUNTRY_TABLE = """
PH|Philippines|PHP|285336|ph|English|Cebu City, Cebu;Iloilo;Bacolod City;Dumaguete, Negros Oriental;Tacloban;Carmen, Bohol ;Kabankalan;Roxas City
KE|Kenya|KES|143699|ea|English|Nairobi;Kisumu ;Eldoret;Mombasa;Nakuru, Rift Valley;Kitale;Machakos;Bungoma
PE|Peru|PEN|86000|la|Spanish|Lima;Arequipa;Huancayo, Junín;Cusco;Trujillo ;Ayacucho;Chiclayo
KH|Cambodia|KHR|79701|sea|English|Phnom Penh;Siem Reap;Battambang;Kampong Cham;Takeo Province ;Kampot
SV|El Salvador|USD|64037|la|Spanish|San Salvador;Santa Ana;San Miguel ;Soyapango, San Salvador;Usulután;Sonsonate
UG|Uganda|UGX|52000|ea|English|Kampala;Gulu;Mbarara;Jinja ;Masaka;Lira
TJ|Tajikistan|TJS|45000|ca|Russian|Душанбе;Khujand;Kulob;Истаравшан;Panjakent ;Vahdat
PK|Pakistan|PKR|42000|sa|English|Lahore;Karachi ;Faisalabad;Rawalpindi;Multan, Punjab
NI|Nicaragua|NIO|36000|la|Spanish|Managua;León;Chinandega ;Masaya;Estelí;Matagalpa
EC|Ecuador|USD|34000|la|Spanish|Quito;Guayaquil;Cuenca ;Santo Domingo de los Tsáchilas;Ambato
CO|Colombia|COP|33000|la|Spanish|Bogotá;Medellín;Cali ;Cartagena, Bolívar;Barranquilla;Pasto
VN|Vietnam|VND|26000|sea|English|Hà Nội;Ho Chi Minh City;Thanh Hóa ;Nghệ An;Huế
BO|Bolivia|BOB|25000|la|Spanish|La Paz;El Alto;Cochabamba ;Santa Cruz de la Sierra;Sucre
GH|Ghana|GHS|22000|wae|English|Accra;Kumasi ;Tamale;Cape Coast;Ho
PY|Paraguay|PYG|21000|la|Spanish|Asunción;Ciudad del Este;Encarnación ;Luque;Caaguazú
MX|Mexico|MXN|20000|la|Spanish|Ciudad de México;Oaxaca;Tuxtla Gutiérrez, Chiapas ;Puebla;Mérida
NG|Nigeria|NGN|18000|wae|English|Lagos;Ibadan ;Kano;Abuja;Enugu
RW|Rwanda|RWF|17500|ea|English|Kigali;Huye ;Musanze;Rubavu
WS|Samoa|WST|17000|pac|English|Apia;Salelologa ;Faleolo;Lufilufi
LB|Lebanon|USD|16500|me|English|Beirut;Tripoli ;Saida;Zahle
TG|Togo|XOF|15000|waf|French|Lomé;Kara ;Sokodé;Kpalimé;Atakpamé
ID|Indonesia|IDR|14500|sea|English|Jakarta;Bandung ;Yogyakarta;Kupang, NTT;Makassar
SL|Sierra Leone|SLL|14000|wae|English|Freetown;Bo ;Kenema;Makeni
GT|Guatemala|GTQ|13500|la|Spanish|Guatemala City;Quetzaltenango ;Antigua Guatemala;Cobán
ML|Mali|XOF|12500|waf|French|Bamako;Ségou ;Sikasso;Mopti
HN|Honduras|HNL|12000|la|Spanish|Tegucigalpa;San Pedro Sula ;La Ceiba;Choluteca
PS|Palestine|ILS|10500|me|English|Nablus;Hebron ;Ramallah;Jenin
TZ|Tanzania|TZS|10000|ea|English|Dar es Salaam;Arusha ;Mwanza;Dodoma
AZ|Azerbaijan|AZN|9800|cauc|English|Baku;Ganja ;Lankaran;Sheki
SN|Senegal|XOF|9500|waf|French|Dakar;Thiès ;Saint-Louis;Kaolack
KG|Kyrgyzstan|KGS|9200|ca|Russian|Бишкек;Osh ;Jalal-Abad;Karakol
AM|Armenia|AMD|9000|cauc|English|Yerevan;Gyumri ;Vanadzor
US|United States|USD|9500|us|English|Oakland, CA;Detroit, MI ;New York, NY;Los Angeles, CA;Chicago, IL
DO|Dominican Republic|DOP|8000|la|Spanish|Santo Domingo;Santiago de los Caballeros ;La Romana
MZ|Mozambique|MZN|7000|af|English|Maputo;Beira ;Nampula
JO|Jordan|JOD|6800|me|English|Amman;Irbid ;Zarqa
LR|Liberia|LRD|6500|wae|English|Monrovia;Gbarnga ;Buchanan
IN|India|INR|6300|sa|English|Bhubaneswar, Odisha;Jaipur ;Pune
HT|Haiti|HTG|6000|waf|French|Port-au-Prince;Cap-Haïtien ;Les Cayes
MG|Madagascar|MGA|5800|waf|French|Antananarivo;Toamasina ;Fianarantsoa
ZW|Zimbabwe|USD|5500|af|English|Harare;Bulawayo ;Mutare
BF|Burkina Faso|XOF|5300|waf|French|Bobo-Dioulasso ;Ouagadougou
BJ|Benin|XOF|5000|waf|French|Cotonou;Porto-Novo ;Parakou
MN|Mongolia|MNT|4900|ca|English|Ulaanbaatar;Darkhan ;Erdenet
GE|Georgia|GEL|4500|cauc|English|Tbilisi;Kutaisi ;Batumi
IQ|Iraq|USD|4200|me|English|Erbil;Sulaymaniyah ;Baghdad
UA|Ukraine|UAH|4000|eu|Russian|Киев;Odessa ;Kharkiv
CR|Costa Rica|CRC|3900|la|Spanish|Cartago ;San José
YE|Yemen|YER|3800|me|English|Aden ;Sana'a
ZM|Zambia|ZMW|3300|af|English|Ndola ;Lusaka
AL|Albania|ALL|3100|eu|English|Tirana;Shkodër ;Durrës
LK|Sri Lanka|LKR|3000|sa|English|Colombo;Kandy ;Jaffna
CD|The Democratic Republic of the Congo|USD|2900|waf|French|Goma;Bukavu ;Kinshasa
CG|Congo|XAF|2300|waf|French|Pointe-Noire ;Brazzaville
TL|Timor-Leste|USD|2200|pac|English|Baucau ;Dili
TR|Turkey|TRY|1700|me|English|Diyarbakır ;Istanbul
MM|Myanmar (Burma)|MMK|1600|sea|English|Yangon;Mandalay ;Bago
CM|Cameroon|XAF|1500|waf|French|Yaoundé ;Douala
MD|Moldova|MDL|1500|eu|Russian|Bălți ;Chișinău
BA|Bosnia and Herzegovina|BAM|1400|eu|English|Sarajevo;Tuzla ;Mostar
IL|Israel|ILS|1300|me|English|Haifa ;Nazareth
MW|Malawi|MWK|1200|af|English|Blantyre ;Lilongwe
NP|Nepal|NPR|1100|sa|English|Pokhara ;Kathmandu
BG|Bulgaria|BGN|1000|eu|English|Plovdiv ;Sofia
EG|Egypt|EGP|950|me|English|Alexandria ;Cairo
CI|Cote D'Ivoire|XOF|850|waf|French|Bouaké ;Abidjan
CL|Chile|CLP|800|la|Spanish|Valparaíso ;Santiago
BR|Brazil|BRL|750|la|English|Rio de Janeiro ;São Paulo
PR|Puerto Rico|USD|700|us|English|Ponce ;San Juan
BZ|Belize|BZD|600|la|English|Orange Walk ;Belize City
SO|Somalia|USD|520|me|English|Mogadishu ;Hargeisa
SS|South Sudan|SSP|500|ea|English|Yei ;Juba
NA|Namibia|NAD|450|af|English|Windhoek;Oshakati ;Rundu
ZA|South Africa|ZAR|420|af|English|Cape Town;Johannesburg, Gauteng ;Soweto
XK|Kosovo|EUR|400|eu|English|Prizren ;Pristina
TH|Thailand|THB|380|sea|English|Bangkok ;Chiang Mai
LA|Lao People's Democratic Republic|LAK|330|sea|English|Luang Prabang ;Vientiane
LS|Lesotho|LSL|300|af|English|Leribe ;Maseru
SB|Solomon Islands|SBD|290|pac|English|Auki ;Honiara
AF|Afghanistan|AFN|280|sa|English|Herat ;Kabul
PG|Papua New Guinea|PGK|260|pac|English|Lae ;Port Moresby
PA|Panama|USD|220|la|Spanish|Colón ;Panama City
SR|Suriname|SRD|200|la|English|Paramaribo
VU|Vanuatu|VUV|150|pac|English|Port Vila
BI|Burundi|BIF|140|ea|French|Gitega ;Bujumbura
TD|Chad|XAF|100|waf|French|N'Djamena
UY|Uruguay|UYU|80|la|Spanish|Montevideo
MR|Mauritania|MRO|40|waf|French|Nouakchott
CN|China|CNY|40|sea|English|Kunming, Yunnan
VC|Saint Vincent and the Grenadines|XCD|30|la|English|Kingstown
RU|Russia|RUB|20|ca|Russian|Москва
VI|Virgin Islands|USD|8|us|English|Christiansted, St. Croix
GU|Guam|USD|3|pac|English|Hagåtña
BT|Bhutan|BTN|1|sa|English|Thimphu
CA|Canada|CAD|1|us|English|Toronto, ON
CV|Cape Verde|CVE|1|waf|French|Praia
"""

# Countries where a share of loans is disbursed in US dollars instead of the local currency.
USD_SHARE = {"KH": 0.55, "LR": 0.4, "HT": 0.15, "TL": 0.0}
DEFAULT_USD_SHARE = 0.03


@dataclass(frozen=True)
class Countries:
    """Column-wise country table, ready for vectorised lookups by country index."""

    codes: np.ndarray
    names: np.ndarray
    currencies: np.ndarray
    weights: np.ndarray
    """Probability of each country (sums to 1)."""
    regions: np.ndarray
    languages: np.ndarray
    usd_share: np.ndarray
    towns: np.ndarray
    """Every town, flat: country i has ``town_count[i]`` towns from ``town_start[i]``."""
    town_start: np.ndarray
    town_count: np.ndarray
    partners: np.ndarray
    """Field-partner ids as the file writes them (``"145.0"``), flat like the towns."""
    partner_start: np.ndarray
    partner_count: np.ndarray


def load_countries() -> Countries:
    """Parse the country table into column arrays."""
    rows = [line.split("|") for line in _COUNTRY_TABLE.strip("\n").split("\n")]
    towns: list[str] = []
    town_start, town_count, partners, partner_start, partner_count = [], [], [], [], []
    loans = np.array([float(r[3]) for r in rows])
    for index, row in enumerate(rows):
        names = row[6].split(";")
        town_start.append(len(towns))
        town_count.append(len(names))
        towns.extend(names)
        # Big countries work through several field partners; ids are stable per country.
        count = int(min(4, 1 + loans[index] // 20000))
        partner_start.append(len(partners))
        partner_count.append(count)
        partners.extend(f"{1 + (index * 37 + k * 131) % 540}.0" for k in range(count))
    codes = np.array([r[0] for r in rows], dtype=object)
    return Countries(
        codes=codes,
        names=np.array([r[1] for r in rows], dtype=object),
        currencies=np.array([r[2] for r in rows], dtype=object),
        weights=loans / loans.sum(),
        regions=np.array([r[4] for r in rows], dtype=object),
        languages=np.array([r[5] for r in rows], dtype=object),
        usd_share=np.array([USD_SHARE.get(c, DEFAULT_USD_SHARE) for c in codes]),
        towns=np.array(towns, dtype=object),
        town_start=np.array(town_start),
        town_count=np.array(town_count),
        partners=np.array(partners, dtype=object),
        partner_start=np.array(partner_start),
        partner_count=np.array(partner_count),
    )
