"""The word lists the guards read: stop words, number words, units, antonym scales,
formats, negations and question words. Data, kept apart from the guards' logic."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return text.split()


def aliases(table: dict[str, str]) -> dict[str, str]:
    """Each alias (the space-separated words of a value) to its canonical name (the key)."""
    return {alias: canon for canon, aliases in table.items() for alias in aliases.split()}


STOPWORDS = frozenset(
    words(
        """a an the this that these those it its i me my we our you your he she they them their
    his her is are was were be been being am do does did doing have has had having can could
    will would shall should may might must of in on at by for with about as into onto to from
    up out over under and or but if then so than too very just also there here what which who
    whom whose where when why how whats some any all each every much many more most such own
    same other another one ones s t please tell give show explain describe write compose create
    generate make produce provide draft get know need want like way ways thing things okay ok
    possible kind sort something anything does doesnt dont not no yes let us per"""
    )
)
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen"
        )
    )
} | {
    w: 10 * i
    for i, w in enumerate(words("twenty thirty forty fifty sixty seventy eighty ninety"), 2)
}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
ORDINALS = {
    w: i
    for i, w in enumerate(
        words("first second third fourth fifth sixth seventh eighth ninth tenth"), 1
    )
}
MULTIPLIERS = {"dozen": "12", "twice": "x2", "double": "x2", "triple": "x3", "half": "1/2"}
UNITS = aliases(
    {
        "gram": "g gram grams gramme grammes",
        "kilogram": "kg kgs kilo kilos kilogram kilograms",
        "milligram": "mg milligram milligrams",
        "pound": "lb lbs pound pounds £ gbp sterling",
        "ounce": "oz ounce ounces",
        "ton": "ton tons tonne tonnes",
        "meter": "m meter meters metre metres",
        "kilometer": "km kms kilometer kilometers kilometre kilometres",
        "centimeter": "cm centimeter centimeters centimetre centimetres",
        "millimeter": "mm millimeter millimeters millimetre millimetres",
        "mile": "mi mile miles",
        "foot": "ft foot feet",
        "inch": "inch inches",
        "yard": "yd yard yards",
        "liter": "l liter liters litre litres",
        "milliliter": "ml milliliter milliliters millilitre millilitres",
        "gallon": "gal gallon gallons",
        "cup": "cup cups",
        "tablespoon": "tbsp tablespoon tablespoons",
        "teaspoon": "tsp teaspoon teaspoons",
        "celsius": "c °c celsius centigrade",
        "fahrenheit": "f °f fahrenheit",
        "kelvin": "kelvin kelvins",
        "second": "sec secs seconds",
        "minute": "min mins minute minutes",
        "hour": "h hr hrs hour hours hourly",
        "day": "day days daily",
        "week": "week weeks weekly",
        "month": "month months monthly",
        "year": "yr yrs year years yearly annual annually",
        "percent": "% percent percentage",
        "dollar": "$ usd dollar dollars",
        "euro": "€ eur euro euros",
        "yen": "¥ jpy yen",
        "byte": "b byte bytes",
        "kilobyte": "kb kilobyte kilobytes",
        "megabyte": "mb megabyte megabytes",
        "gigabyte": "gb gigabyte gigabytes",
        "terabyte": "tb terabyte terabytes",
        "bit": "bit bits",
        "calorie": "cal kcal calorie calories",
        "watt": "w watt watts",
        "kilowatt": "kw kilowatt kilowatts",
        "kilowatt-hour": "kwh",
        "volt": "v volt volts",
        "mph": "mph",
        "kph": "kph kmh",
        "acre": "acre acres",
        "hectare": "ha hectare hectares",
    }
)
AMBIGUOUS_UNITS = frozenset(  # units only right after a number ("5 g", "10 min")
    [a for a in UNITS if len(a) == 1] + words("mi ha min sec cal gal ton bit yr hr")
)
SCALES_OF_WORDS = (  # scale: pole words | pole words [| ...] (base forms; inflections stripped)
    "switch: enable activate turnon switchon | disable deactivate turnoff switchoff off",
    "distance: near nearer nearest closer closest | far farther farthest further furthest",
    "amount: increase raise rise rose risen grow grew gain boost up | decrease reduce drop "
    "fall fell fallen shrink shrank decline cut down lower",
    "quantity: more most majority | less least fewer fewest few minority",
    "quantifier: all every each everyone everybody | some any several someone anyone | none "
    "nobody | most majority | few minority | one single | everyother alternate",
    "frequency: always | sometimes often usually occasionally ever | rarely seldom",
    # necessity ("should I" asks it as often as "do I need to") | advice | permission
    "modality: must need required require mandatory compulsory obligatory haveto should ought "
    "expected | recommended advisable | may can could allowed permitted possible optional",
    "relative: next upcoming coming | last previous recent",
    "day: yesterday | today tonight | tomorrow",
    "weekday: monday | tuesday | wednesday | thursday | friday | saturday | sunday",
    "month: january | february | march | april | may | june | july | august | september | "
    "october | november | december",
    "season: spring | summer | autumn fall | winter",
    "operator: plus sum addition | minus subtract subtraction | times multiply product "
    "multiplication | divide quotient division | modulo mod remainder | power exponent "
    "squared cubed | derivative differentiate | integral integrate | union | intersection | "
    "divisor gcd | multiple lcm | mean average | median",
    "size: large larger largest big bigger biggest huge | small smaller smallest little tiny",
    "height: tall taller tallest high higher highest | short shorter shortest low lower lowest",
    "length: long longer longest lengthy detailed | short shorter shortest brief concise",
    "speed: fast faster fastest quick quicker quickest quickly rapid | slow slower slowest slowly",
    "heat: hot hotter hottest warm warmer warmest heat | cold colder coldest cool cooler",
    "age: old older oldest elderly ancient | young younger youngest new newer newest modern",
    "time: first early earlier earliest before | last late later latest after",
    "quality: good better best great | bad worse worst poor",
    "position: above over upper top | below under lower bottom beneath",
    "state: start begin open launch | stop end finish close shut quit exit terminate",
    "membership: add insert include including append install attach | remove delete exclude "
    "excluding except uninstall detach erase",
    "trade: buy bought purchase | sell sold",
    "transfer: upload import push send input | download export pull receive output",
    "cipher: encrypt encode compress zip lock | decrypt decode decompress unzip unlock",
    "visibility: show reveal | hide conceal",
    "link: connect mount subscribe follow login signin | disconnect unmount unsubscribe "
    "unfollow logout signout",
    "permission: allow permit accept approve grant | deny block reject refuse forbid ban prevent",
    "truth: true correct right | false incorrect wrong",
    "sign: positive plus | negative minus",
    "outcome: win won pass succeed success | lose lost fail failure",
    "opinion: agree love | disagree dislike hate",
    "mood: happy glad | sad unhappy",
    "strength: strong stronger strongest | weak weaker weakest",
    "weight: heavy heavier heaviest | light lighter lightest",
    "shade: dark darker darkest | light lighter lightest bright",
    "moisture: wet | dry",
    "hardness: hard harder | soft softer",
    "difficulty: difficult hard harder hardest | easy easier easiest simple",
    "price: expensive costly | cheap cheaper cheapest inexpensive affordable",
    "safety: safe safer safest | dangerous unsafe risky",
    "legality: legal lawful | illegal unlawful",
    "possibility: possible | impossible",
    "health: healthy | unhealthy",
    "extreme: maximum max maximize maximise | minimum min minimize minimise",
    "order: ascending asc | descending desc",
    "north: north northern | south southern",
    "east: east eastern | west western",
    "side: left | right",
    "inside: inside internal inner | outside external outer",
    "access: public | private",
    "sex: male man men boy | female woman women girl",
    "merit: pro pros advantage benefit | con cons disadvantage drawback",
    "likeness: same similar similarity alike | different difference differ",
)
FORMATS = aliases(
    {
        "json": "json",
        "yaml": "yaml yml",
        "xml": "xml",
        "csv": "csv",
        "markdown": "markdown",
        "html": "html",
        "latex": "latex",
        "table": "table tabular",
        "list": "list bullet bullets bulleted numbered",
        "poem": "poem poems poetry verse",
        "haiku": "haiku",
        "sonnet": "sonnet",
        "limerick": "limerick",
        "essay": "essay essays",
        "story": "story stories tale",
        "article": "article blog",
        "tweet": "tweet",
        "email": "email emails",
        "letter": "letter",
        "summary": "summary summarize summarise tldr",
        "outline": "outline",
        "speech": "speech",
        "song": "song lyrics",
        "joke": "joke jokes",
        "dialogue": "dialogue dialog conversation",
        "paragraph": "paragraph paragraphs",
        "sentence": "sentence sentences",
        "line": "line lines",
        "word": "word words",
        "formal": "formal professional",
        "informal": "informal casual",
        "funny": "funny humorous",
        "eli5": "eli5",
    }
) | {
    language: language
    for language in words(
        "english french spanish german italian portuguese dutch swedish norwegian "
        "danish finnish polish russian ukrainian czech greek turkish arabic hebrew hindi bengali "
        "urdu chinese mandarin cantonese japanese korean vietnamese thai indonesian latin "
        "python javascript typescript java kotlin php sql bash powershell haskell scala perl"
    )
}
PHRASAL = frozenset(
    (verb, particle)
    for verb in ("turn", "switch", "log", "sign")
    for particle in ("on", "off", "in", "out")
) | {("every", "other"), ("have", "to"), ("has", "to")}
LENGTH_FORMATS = frozenset(words("word sentence line paragraph"))  # only after a count
TIME_UNITS = frozenset(words("second minute hour day week month year"))
SYNONYMS = tuple(  # words that ask for the same thing in an otherwise identical prompt
    frozenset(words(group))
    for group in (
        "fix resolve repair solve correct troubleshoot",
        "teach train",
        "change update modify edit alter",
        "make create build write compose draft generate prepare",
        "keep preserve maintain",
        "article post blog",
        "recommend suggest",
        "tip tips advice ways ideas suggestions",
        "get obtain",
        "convert turn transform",
        "find locate",
        "learn study",
        "help assist",
        "return give",
        "heavier weighs",
        "downside downsides disadvantage disadvantages drawback drawbacks",
        "upside upsides advantage advantages benefit benefits",
    )
)
NAME_ALIASES = (  # spellings of one name, rewritten to the first before the guards read
    ("US", r"\b(?:the\s+)?United\s+States(?:\s+of\s+America)?\b|\bUSA\b|\bU\.S\.(?:A\.)?"),
    ("UK", r"\b(?:the\s+)?United\s+Kingdom\b|\bGreat\s+Britain\b|\bBritain\b"),
    ("EU", r"\b(?:the\s+)?European\s+Union\b"),
)
NEGATIONS = frozenset(
    words("not no never none nobody nothing nowhere neither nor cannot without unable")
    + words("fail avoid refuse lack neglect")  # verbs that negate what follows ("fail to pay")
)
DIRECTION_MARKERS = frozenset(words("to into from than towards toward"))
MIN_PAYLOAD_WORDS = 4  # "Summarize this: <payload>"; shorter tails are questions, not payloads
QUESTION_TYPES = {"who": "person", "whom": "person", "whose": "person", "where": "place"}
QUESTION_TYPES |= {"when": "time", "why": "reason"}
HOW_TYPES = {"many": "quantity", "much": "quantity", "long": "duration", "old": "age"}
HOW_TYPES |= {w: f"how-{w}" for w in words("far big tall fast often deep high large heavy hot")}
HOW_TYPES |= {w: f"how-{w}" for w in words("cold soon wide small early late")}
AUX = frozenset(
    words("is are was were am do does did can could should would will shall may has have had")
)

CONTRACTIONS = (
    (re.compile(r"\b(can)['\u2019]t\b"), r"\1 not"),
    (re.compile(r"\bwon['\u2019]t\b"), "will not"),
    (re.compile(r"n['\u2019]t\b"), " not"),
    (re.compile(r"['\u2019](re)\b"), " are"),
    (re.compile(r"['\u2019](ve)\b"), " have"),
    (re.compile(r"['\u2019](ll)\b"), " will"),
    (re.compile(r"['\u2019](m)\b"), " am"),
    (re.compile(r"\b(what|that|it|where|who|how|there|here|he|she)['\u2019]s\b"), r"\1 is"),
    (re.compile(r"['\u2019]s\b"), ""),
)
