"""Memory extraction without a model, subject normalisation and triage; pure functions, no I/O.

The rule extractor handles explicit statements: "remember that ...", "my X is Y", "X is now Y",
"we decided ...", "from now on ...", "I moved to / work at / prefer ...", "call me ...", "switched from A to
B", and "forget ..." / "I no longer ...". Anything else is left to the model extractor. Subjects are short
normalised keys `<entity>/<attribute>`: `user/home_city`, `client:hartley/support_hours`,
`project:airep/staging_server`, `user/pref/spelling`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from nodes.workspace import Workspace
from state.memory import MemoryKind, MemoryTier

MemoryAction = Literal["remember", "forget"]
MAX_MEMORY_CHARS = 2000
SUBJECT_RE = re.compile(r"^[a-z0-9][a-z0-9:_.-]*(/[a-z0-9][a-z0-9_.-]*)+$")
FREE_SUBJECT_PARTS = ("/note/", "/decision/")  # subjects made from free text never supersede each other

SECRET_RE = re.compile(
    r"\b(pass(word|code|phrase)s?|pin( code| number)?|api[ _-]?keys?|secret( key)?s?|access[ _-]?tokens?|"
    r"private[ _-]?keys?|credit[ _-]?card|card[ _-]?number|cvv|cvc|security code|bank (account|login))\b"
    r"|\b(?:\d[ -]?){13,19}\b|\b(sk|pk|ghp|xox[bp])[-_][A-Za-z0-9]{10,}",
    re.IGNORECASE,
)
TRANSIENT_RE = re.compile(
    r"\b(today|tonight|this (morning|afternoon|evening)|right now|just now|at the moment)\b", re.IGNORECASE
)
OPINIONS = frozenset(
    "lovely great nice awful terrible good bad amazing fine ok okay cool brilliant rubbish annoying boring fun weird "
    "funny beautiful horrible excellent wonderful fantastic gorgeous ugly".split()
)
STOPWORDS = frozenset(
    "the a an our my your his her their its this that these those of for at on in to with by from current currently "
    "now still new old about and".split()
)
NOT_A_NOUN_PHRASE = frozenset(
    "can could would will should shall please tell show give make check draft write send find let what which who "
    "where when why how if whether it this that there here he she they we you i do does did is are was were "
    "just maybe also then but so because we've i've you've they've we're i'm you're they're it's that's "
    "nobody everyone everybody someone somebody people nothing everything".split()
)
CORPORATE_SUFFIX = re.compile(r"\s*(?:&|and)?\s*\b(co|company|ltd|limited|inc|llc|plc|gmbh|group)\.?$")

ATTR_SYNONYMS: dict[str, str] = {
    "home town": "home city",
    "hometown": "home city",
    "city": "home city",
    "mobile phone number": "phone number",
    "mobile number": "phone number",
    "mobile": "phone number",
    "phone": "phone number",
    "cell": "phone number",
    "cell number": "phone number",
    "github handle": "github username",
    "github user name": "github username",
    "github user": "github username",
    "handle": "username",
    "user name": "username",
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "time zone": "timezone",
    "tz": "timezone",
    "prod": "production",
    "prod database": "production",
    "prod db": "production",
    "production database": "production",
    "production db": "production",
    "text editor": "editor",
    "code editor": "editor",
    "job": "role",
    "job title": "role",
    "position": "role",
    "company": "employer",
    "date of birth": "birthday",
    "dob": "birthday",
    "last name": "surname",
    "first name": "name",
}
VERB_NOUNS = {"costs": "price", "launches": "launch", "renews": "renewal", "starts": "start", "opens": "opening"}

TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in (
        ("spelling", r"\b(british|american|oxford|us|uk)\s+(spelling|english)\b|\bspelling\b"),
        ("reply_language", r"\b(in|into)\s+(english|german|french|spanish|portuguese|italian|dutch|welsh|polish)\b"),
        ("answer_length", r"\b(short|shorter|brief|concise|terse|detailed|long|longer|lengthy|verbose|thorough)\b"),
        ("answer_format", r"\b(bullets?|bullet points?|paragraphs?|prose|tables?|markdown|numbered lists?)\b"),
        ("tone", r"\b(formal|informal|casual|friendly|polite|blunt|direct|warm|professional)\b"),
        ("units", r"\b(metric|imperial|miles|kilometres|kilometers|celsius|fahrenheit)\b"),
        ("date_format", r"\b(date format|dd/mm|mm/dd|iso dates?|iso 8601)\b"),
        ("currency", r"\b(gbp|usd|eur|pounds|dollars|euros)\b"),
        ("code_style", r"\b(tabs|spaces|type hints|indentation|semicolons)\b"),
    )
)

TOPIC_SUBJECTS = frozenset(f"user/pref/{name}" for name, _ in TOPICS)

FILLER_RE = re.compile(
    r"^(?:ok(?:ay)?|so|and|also|oh(?: and)?|btw|by the way|fyi|heads up|just so you know|for the record|"
    r"for your info(?:rmation)?|note(?:\s+that)?|update|correction|actually|hey(?: nova)?|hi(?: nova)?|right|well|"
    r"yes|no(?=,)|"
    r"please|just|anyway|cool|great|thanks)\b[\s,:;!.–—-]*",
    re.IGNORECASE,
)
TRAILING_RE = re.compile(
    r"(?:[\s,]+(?:now|these days|nowadays|at the moment|currently|any ?more|instead|from now on|going forward|"
    r"for now|too|as well|then|please|thanks|last (?:week|month|year)|yesterday|recently|this (?:week|month|year)))+"
    r"\s*$",
    re.IGNORECASE,
)
FORGET_RE = re.compile(
    r"^(?:please\s+)?(?:forget|stop remembering|don'?t remember|do not remember|delete|erase|wipe|remove|scratch)"
    r"(?:\s+(?:the|that|this)?\s*(?:memory|note|fact|thing you remembered|last thing you remembered))?"
    r"(?:\s+(?:that|about|what i said about|everything about))?\b\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
REMEMBER_RE = re.compile(
    r"^(?:please\s+)?(?:remember|make a note|note down|note|keep in mind|bear in mind|don'?t forget|save this|"
    r"store this|store it|save it|for future reference)(?:\s+(?:for (?:the future|next time)|this))?"
    r"(?:\s*(?:that|:|,))?\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
INSTRUCTION_RE = re.compile(
    r"^(?:from now on|going forward|in future|in the future|from today|henceforth)\b[\s,:]*(?P<rest>.+)$",
    re.IGNORECASE,
)
ALWAYS_RE = re.compile(r"^(?P<rest>(?:always|never)\s+.+)$", re.IGNORECASE)
TRAILING_INSTRUCTION_RE = re.compile(r"^(?P<rest>.+?)[\s,]+(?:from now on|going forward|in future)$", re.IGNORECASE)
DECISION_RE = re.compile(
    r"^(?:we|i)(?:'ve| have)?\s+(?:(?:finally|now|just)\s+)?(?:decided|agreed|chose|settled)\b\s*(?:that|on)?\s*"
    r"(?P<rest>.+)$|^(?:decision|decided)\s*[:,-]\s*(?P<rest2>.+)$|^we(?:'re| are) going with\s+(?P<rest3>.+)$",
    re.IGNORECASE,
)
MARKER_ONLY_RE = re.compile(
    r"^(?:from now on|going forward|in future|remember(?: this)?|note|please remember|we(?:'ve| have)? decided|"
    r"decision|for future reference|keep in mind)$",
    re.IGNORECASE,
)

SWITCH_RE = re.compile(
    r"^(?:(?P<x>.+?)\s+(?:has\s+|have\s+)?|i(?:'ve| have)?\s+)(?:switched|changed|moved|migrated|gone|went)\s+"
    r"from\s+(?P<a>.+?)\s+to\s+(?P<b>.+)$",
    re.IGNORECASE,
)
HOME_RE = re.compile(
    r"^i(?:'ve| have)?\s+(?:now\s+|just\s+|recently\s+)?(?:moved|relocated)\s+to\s+(?P<v>.+)$"
    r"|^i\s+(?:now\s+)?live\s+in\s+(?P<v2>.+)$|^i(?:'m| am)\s+(?:now\s+)?based\s+in\s+(?P<v3>.+)$",
    re.IGNORECASE,
)
WORK_RE = re.compile(
    r"^i\s+(?:now\s+)?work\s+(?:at|for)\s+(?P<v>.+)$|^i(?:'ve| have)\s+(?:just\s+)?joined\s+(?P<v2>.+)$",
    re.IGNORECASE,
)
PREFER_PAIR_RE = re.compile(r"^i\s+(?:now\s+)?prefer\s+(?P<a>.+?)\s+(?:to|over|rather than)\s+(?P<b>.+)$", re.I)
PREFER_RE = re.compile(r"^i\s+(?:now\s+)?prefer\s+(?P<a>.+)$", re.IGNORECASE)
LIKE_RE = re.compile(
    r"^i\s+(?:really\s+|now\s+|actually\s+)?(?P<verb>love|like|hate|dislike|can'?t stand|enjoy|loathe)\s+(?P<obj>.+)$",
    re.IGNORECASE,
)
NAME_RE = re.compile(r"^(?:call me|my name is|my name's)\s+(?P<v>.+)$", re.IGNORECASE)
CHANGED_TO_RE = re.compile(
    r"^(?P<x>.+?)\s+(?:has\s+|have\s+)?(?:changed|moved|switched|went|gone|rose|risen|dropped|fell|fallen|"
    r"increased|decreased|grew|grown|jumped)\s+(?:up\s+|down\s+|back\s+)?to\s+(?P<y>.+)$",
    re.IGNORECASE,
)
SET_TO_RE = re.compile(
    r"^(?:i|we)(?:'ve| have)?\s+(?:just\s+|now\s+|finally\s+)?(?:moved|put|changed|set|raised|increased|lowered|"
    r"reduced|cut|bumped|upped|renamed|pushed|updated)\s+(?P<t>.+?)\s+(?:up\s+|down\s+|back\s+)?to\s+(?P<y>.+)$",
    re.IGNORECASE,
)
SWITCH_TOPIC_RE = re.compile(
    r"^(?:i|we)(?:'ve| have)?\s+(?:just\s+|now\s+)?(?:switched|moved|migrated|changed|swapped)\s+(?P<t>.+?)\s+"
    r"from\s+(?P<a>.+?)\s+to\s+(?P<b>.+)$",
    re.IGNORECASE,
)
USE_FOR_RE = re.compile(
    r"^(?:i|we)(?:'re| are)?\s+(?:now\s+)?(?:use|using|run|running|go with|rely on)\s+(?P<v>.+?)\s+for\s+(?P<t>.+)$",
    re.IGNORECASE,
)
DRIVE_RE = re.compile(r"^i\s+(?:now\s+)?drive\s+(?P<v>.+)$", re.IGNORECASE)
IAM_RE = re.compile(
    r"^i(?:'m| am)\s+(?:now\s+|actually\s+)?(?P<v>(?!(?:going|trying|looking|thinking|in|at|on|off|about|not|so|"
    r"just|here|back|done|sure|sorry|happy|glad|tired|busy|fine|ok|okay|hungry|sick|ill|late|away|stuck|bored|"
    r"ready|confused|excited|worried|free|around|out|a bit|really|very|usually|normally|generally|often|always|"
    r"sometimes|never)\b)(?!\w+ing\b).+)$",
    re.IGNORECASE,
)
RETIRE_RE = re.compile(
    r"^(?:i|we)(?:'ve| have)?\s+(?:just\s+|finally\s+)?(?:sold|left|quit|cancelled|canceled|dropped|ditched|"
    r"stopped using|got rid of|moved away from|closed|given up|gave up)\s+(?:the\s+|my\s+|our\s+)?(?P<obj>.+)$",
    re.IGNORECASE,
)
LEFT_RE = re.compile(
    r"^(?P<who>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})\s+(?:has\s+|have\s+)?(?:left|quit)\s+(?P<org>.+)$"
)
RELATIONS = frozenset(
    "sister brother mum mom mother dad father son daughter partner wife husband boyfriend girlfriend friend parents "
    "grandma grandmother grandad grandfather aunt uncle cousin".split()
)
QUOTE_RE = re.compile(r"(?<![\w])(['\"“‘])(.{1,160}?)(['\"”’])(?![\w])")
PROTECT = {",": "\ue000", ":": "\ue001", ".": "\ue002", ";": "\ue003", "?": "\ue004", "!": "\ue005", "-": "\ue006"}
APPOSITION_RE = re.compile(
    r"\bmy (?P<rel>dog|cat|pet|puppy|daughter|son|wife|husband|partner|boyfriend|girlfriend|sister|brother|boss|"
    r"manager) (?P<name>[A-Z][a-z]+)\b"
)
PRONOUN_RE = re.compile(r"^(their|its|his|her)\s+", re.IGNORECASE)
COPULA_RE = re.compile(
    r"^(?P<x>.+?)\s+(?P<cop>is now called|are now called|is now named|is called|are called|is named|are named|"
    r"is now|are now|will now be|will be|will use|is|are|stays on|stays with|stays|remains|now costs|costs|"
    r"now runs on|now runs|runs on|runs|now uses|uses|launches in|launches on|launches|renews|starts|opens|"
    r"now lives in|now lives at|lives in|lives at|is located in|is located at|is based in|is based at)\s+"
    r"(?P<y>.+)$",
    re.IGNORECASE,
)
DECIDE_USE_RE = re.compile(
    r"^to\s+(?:(?:drop|ditch|scrap)\s+.+?\s+and\s+(?:use|go with|switch to)|replace\s+.+?\s+with|use|go with|pick|"
    r"choose|adopt|stick with|stay with|stay on|keep|switch to)\s+(?P<v>.+?)\s+(?:for|as|on)\s+(?P<t>.+)$",
    re.IGNORECASE,
)
DECIDE_SWITCH_RE = re.compile(
    r"^to\s+(?:switch|move|migrate|change|swap|convert|port)\s+(?P<t>.+?)\s+(?:to|onto|over to)\s+(?P<v>.+)$",
    re.IGNORECASE,
)
NEGATION_RE = re.compile(r"\b(no longer|not any ?more|n'?t\b.*\bany ?more|anymore)\b", re.IGNORECASE)
SUBORDINATE_RE = re.compile(
    r"\s+(?:now that|because|since|as long as|as|when|if|but|though|although|these days|now|any ?more|except)\b.*$",
    re.IGNORECASE,
)
DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
PERIOD = rf"(?:day|morning|afternoon|evening|night|week|weekday|weekend|month|year|quarter|fortnight|{DAYS})s?"
FREQUENCY = r"usually|normally|generally|typically|always|never|often|mostly|regularly|tend to"
HABIT_RE = re.compile(
    rf"^(?P<who>i|we)\s+(?:(?:now|still|also)\s+)?(?P<adv>{FREQUENCY})\s+(?P<rest>.+)$", re.IGNORECASE
)
WHEN_LEAD_RE = re.compile(
    rf"^(?P<when>(?:every|each)\s+(?:other\s+)?{PERIOD}(?:\s+(?:morning|afternoon|evening|night))?|on\s+(?:{DAYS})s)"
    rf"[\s,]+(?P<who>i|we)\s+(?:(?P<adv>{FREQUENCY})\s+)?(?P<rest>.+)$",
    re.IGNORECASE,
)
WHEN_TAIL_RE = re.compile(
    rf"^(?P<who>i|we)\s+(?P<rest>.+?)\s+(?P<when>(?:every|each)\s+(?:other\s+)?{PERIOD})$", re.IGNORECASE
)
WHEN_CUT_RE = re.compile(
    rf"\s+(?:(?:on|every|each)\s+(?:other\s+)?(?:{DAYS}|{PERIOD})\b|in the (?:morning|afternoon|evening)s?\b|"
    r"at (?:night|weekends?|the weekends?|\d)|(?:before|after|unless|when|if|while|during)\s)",
    re.IGNORECASE,
)
HABIT_NOT = frozenset(
    "be am is are was were feel get got think forget wonder say said end wish hope it this that there here i we you "
    "he she they just maybe also".split()
)
PRONOUN_START_RE = re.compile(r"^(?:it|that|this|she|he|they)(?:'s|'re|\s|$)", re.IGNORECASE)
IT_UPDATE_RE = re.compile(
    r"^(?:it|that|this)(?:'s|\s+is|\s+are|\s+has|'s been|\s+has been)?\s+(?:now\s+|been\s+)?"
    r"(?:(?:changed|moved|switched|gone|increased|decreased|dropped|risen|raised|reduced|bumped|pushed|put)"
    r"\s+(?:up\s+|down\s+|back\s+)?to\s+)?(?P<y>.+)$",
    re.IGNORECASE,
)
CHANGE_SIGNAL_RE = re.compile(
    r"\bnow\b|\b(?:changed|moved|switched|gone|increased|decreased|dropped|risen|raised|reduced|bumped|pushed)\b",
    re.IGNORECASE,
)
IT_VERB_RE = re.compile(r"^(?:it|this)\s+(?:now\s+)?(?P<rest>(?:costs|launches|renews|starts|opens)\b.+)$", re.I)
PERSON_PRONOUN_RE = re.compile(r"^(?:she|he|they)(?P<cop>'s|'re|\s+is|\s+are)?\s+(?P<rest>.+)$", re.IGNORECASE)
PAST_COPULA_RE = re.compile(r"^(?P<x>.+?)\s+(?P<cop>was|were|used to be)\s+(?P<y>.+)$", re.IGNORECASE)
NAME_RUN_RE = re.compile(r"(?<![\w'-])([A-Z][a-z][\w'-]*(?:\s+[A-Z][a-z][\w'-]*){0,2})")
NOT_NAMES = frozenset(
    f"{DAYS.replace('|', ' ')} january february march april may june july august september october november "
    "december "
    "the a an my our your his her their its it this that these those i we you he she they from remember note "
    "every each on in at actually also heads update correction unless once until after before if when while "
    "because since".split()
)
THIRD_PERSON_RE = re.compile(
    r"^(?P<name>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})\s+(?:now\s+|usually\s+|always\s+|normally\s+|still\s+)?"
    r"(?P<verb>prefers?|likes?|loves?|hates?|works?|lives?|uses?|speaks?|drives?|pays?)\s+(?P<rest>.+)$"
)
# How someone pays: idioms and one-off payments are no standing fact, and terms and method are two facts.
PAY_IDIOM_RE = re.compile(
    r"^(?:attention|off|back|heed|tribute|respects|dividends|the price|a visit|lip service)\b", re.I
)
ONE_OFF_RE = re.compile(
    rf"\b(?:next|tomorrow|tonight|today|yesterday|this (?:week|month|morning|afternoon|evening)|on (?:{DAYS}))\b", re.I
)
PAY_TERMS_RE = re.compile(
    r"\b(?:\d+[- ]days?|days|terms|net \d+|weekly|monthly|quarterly|annually|yearly|upfront|up front|in advance|"
    r"in arrears|on invoice|on time|late|early)\b",
    re.I,
)
PAY_METHOD_RE = re.compile(
    r"\b(?:by|via|with|through|in)\b|\b(?:card|cash|cheque|check|bacs|transfer|direct debit|paypal|stripe|"
    r"invoice)\b",
    re.I,
)
CONTACT_RE = re.compile(
    r"\b(e-?mails?|phone|calls?|texts?|sms|whatsapp|slack|teams|zoom|letters?|post|in person|video)\b", re.I
)
# "Priya Shah is my accountant": a named person or thing is the owner's role, said the other way round.
NAME_IS_MY_RE = re.compile(
    r"^(?P<name>[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,3})\s+(?P<cop>is|are)\s+(?:now\s+)?(?P<poss>my|our)"
    r"\s+(?:new\s+)?(?P<role>[a-z][a-z' -]{1,40})$"
)
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+|;\s*")
CLAUSE_SPLIT_RE = re.compile(
    r"\s*(?:,|:|\s[–—-])\s+"
    r"|\s+(?:so|and|but|because|which means)\s+(?=(?:i|i'm|i've|we|we've|my|our|she|he|they|it)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Candidate:
    """A memory an extractor proposes; triage and the store decide what becomes of it.

    Attributes:
        text: The self-contained statement to store (or, for `forget`, what to look for).
        kind: fact, preference, decision, project or episode.
        subject: Normalised key; None when it must be resolved against stored memories (`replaces`).
        value: The normalised value the subject takes, used to tell a restatement from a change.
        confidence: How sure the extractor is, 0..1.
        explicit: The user asked for it to be remembered (or forgotten).
        action: `remember` or `forget`.
        replaces: For "switched from A to B": the old value A.
        replacement: For "switched from A to B": B as the user wrote it.
        mentions: For `forget` after "I sold the Skoda": names a memory must mention to be retired.
        method: Which extractor produced it.
    """

    text: str
    kind: MemoryKind
    subject: str | None
    value: str | None = None
    confidence: float = 0.7
    explicit: bool = False
    action: MemoryAction = "remember"
    replaces: str | None = None
    replacement: str | None = None
    mentions: tuple[str, ...] = ()
    method: str = "rules"


@dataclass(frozen=True)
class Triage:
    """What to do with a candidate: a tier, or None to refuse storing it at all; always a reason."""

    tier: MemoryTier | None
    reason: str
    confidence: float


@dataclass(frozen=True)
class Entities:
    """Names the owner uses for projects and clients, mapped to subject prefixes and namespaces."""

    aliases: tuple[tuple[str, str], ...] = ()
    namespaces: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_workspace(cls, workspace: Workspace | None) -> Entities:
        """Collect every project name and alias of a workspace."""
        if workspace is None:
            return cls()
        aliases: dict[str, str] = {}
        for project in workspace.projects:
            for name in project.names():
                aliases.setdefault(name.casefold(), project.entity)
        ordered = tuple(sorted(aliases.items(), key=lambda kv: -len(kv[0])))
        return cls(ordered, tuple((p.entity, p.namespace) for p in workspace.projects))

    def find(self, text: str) -> tuple[str, int, int] | None:
        """Return (entity, start, end) of the longest known name in lowercase text, possessive included."""
        for alias, entity in self.aliases:
            m = re.search(rf"(?<![\w-]){re.escape(alias)}(?:'s|s')?(?![\w-])", text)
            if m:
                return entity, m.start(), m.end()
        return None

    def namespace_for(self, subject: str) -> str:
        """Return the namespace a subject's memories live in: the project's, or the user's."""
        entity = subject.split("/", 1)[0]
        return dict(self.namespaces).get(entity, "user")

    def names(self) -> list[str]:
        """Return the known entity keys."""
        return sorted({e for _, e in self.aliases})


def normalise_text(text: str) -> str:
    """Return the exact-duplicate key of a text: casefolded words and numbers only."""
    return " ".join(re.findall(r"[\w£$€%@./:+-]+", text.casefold().replace("’", "'"))).strip(" .")


def normalise_value(value: str | None) -> str:
    """Return a value for comparison: casefolded, articles and punctuation dropped."""
    if not value:
        return ""
    words = re.findall(r"[\w£$€%@./:+-]+", value.casefold())
    return " ".join(w.strip(".") for w in words if w not in {"a", "an", "the", "now", "at", "on", "in"})


def content_words(text: str) -> list[str]:
    """Return the lowercase content words of a text."""
    return [w for w in re.findall(r"[a-z0-9][a-z0-9'+.-]*", text.casefold()) if w not in STOPWORDS and len(w) > 1]


def slug(text: str, *, max_words: int = 6) -> str:
    """Return a subject part: lowercase words joined by underscores."""
    words = re.findall(r"[a-z0-9]+", text.casefold())
    return "_".join(words[:max_words])


def _entity_slug(text: str) -> str:
    name = re.sub(r"^(the|a|an)\s+", "", text.strip().casefold())
    name = CORPORATE_SUFFIX.sub("", name)
    return slug(name, max_words=4)


def normalise_subject(raw: str) -> str:
    """Coerce a subject (e.g. from the model) into `<entity>/<attribute>` form; raise ValueError if impossible."""
    text = raw.strip().casefold().replace("\\", "/").replace(" ", "_")
    text = re.sub(r"[^a-z0-9:_./-]", "", text)
    text = re.sub(r"/+", "/", text).strip("/")
    parts = [re.sub(r"_+", "_", p).strip("_.-") for p in text.split("/")]
    parts = [p for p in parts if p]
    if not parts:
        raise ValueError(f"subject {raw!r} has no letters or digits")
    if len(parts) == 1:
        parts = ["user", *parts]
    out = "/".join(parts)[:120]
    if not SUBJECT_RE.match(out):
        raise ValueError(f"subject {raw!r} cannot be normalised (got {out!r})")
    return out


ATTR_SYNONYMS.update({v: v for v in set(ATTR_SYNONYMS.values()) if v not in ATTR_SYNONYMS})
SYNONYM_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(v) for v in sorted(ATTR_SYNONYMS, key=len, reverse=True)) + r")(?![\w-])"
)


def _canonical_attr(words: Sequence[str]) -> str:
    phrase = SYNONYM_RE.sub(lambda m: ATTR_SYNONYMS[m.group(1)], " ".join(words))
    return slug(phrase, max_words=5)


def _clean(text: str) -> str:
    text = text.strip().rstrip(".!")
    if len(text) > 1 and text[0] in "\"'`" and text[-1] == text[0]:
        text = text[1:-1]
    return TRAILING_RE.sub("", text).strip()


def _protect_quotes(text: str) -> str:
    """Hide punctuation inside quotes so that splitting into sentences and clauses leaves quotes whole."""
    return QUOTE_RE.sub(lambda m: "".join(PROTECT.get(ch, ch) for ch in m.group(0)), text)


def _unprotect(text: str) -> str:
    for ch, mark in PROTECT.items():
        text = text.replace(mark, ch)
    return text


def parse_subject(noun_phrase: str, entities: Entities) -> tuple[str, str]:
    """Return (entity, attribute) for the noun phrase a statement is about.

    "my home city" -> (user, home_city); "Hartley & Co's support hours" -> (client:hartley, support_hours);
    "the practice manager at Brightwater Dental" -> (brightwater_dental, practice_manager).
    """
    original = noun_phrase.strip().replace("’", "'")
    low = original.casefold()
    entity: str | None = None
    if re.match(r"^(my|mine|i|me)\b", low):
        entity = "user"
        low = re.sub(r"^(my|mine|i|me)\b\s*", "", low)
    hit = entities.find(low)
    if hit:
        entity, start, end = hit[0], hit[1], hit[2]
        low = f"{low[:start]} {low[end:]}"
    elif entity == "user":
        low = re.sub(r"(?:'s|s')(?=\s)", "", low)
    else:
        possessive = re.match(r"^(?P<a>.+?)(?:'s|s')\s+(?P<b>.+)$", low)
        of_phrase = re.match(r"^(?P<b>.+?)\s+(?:of|for|at|with|from)\s+(?P<a>.+)$", original)
        if possessive:
            entity, low = _entity_slug(possessive["a"]), possessive["b"]
        elif of_phrase and re.search(r"\b[A-Z]", of_phrase["a"]):
            entity, low = _entity_slug(of_phrase["a"]), of_phrase["b"].casefold()
        else:
            tokens = original.split()
            if tokens and tokens[0].casefold() in {"the", "our", "a", "an"}:
                tokens = tokens[1:]
            caps = []
            for tok in tokens:
                if tok[:1].isupper():
                    caps.append(tok)
                else:
                    break
            if caps and len(caps) < len(tokens):
                entity, low = _entity_slug(" ".join(caps)), " ".join(tokens[len(caps) :]).casefold()
    words = [w for w in re.findall(r"[a-z0-9][a-z0-9'-]*", low) if w not in STOPWORDS and w != "'s"]
    return entity or "general", _canonical_attr(words)


def _subject(entity: str, attr: str) -> str:
    return normalise_subject(f"{entity}/{attr or 'about'}")


def _is_noun_phrase(text: str, entities: Entities | None = None) -> bool:
    words = text.split()
    if not words or len(words) > 9:
        return False
    first = words[0].casefold().strip(",")
    hit = entities.find(text.casefold()) if entities else None
    if first in NOT_A_NOUN_PHRASE and not (hit and hit[1] == 0):
        return False
    return not re.search(r"\b(that|if|whether|what|which|who|can|could|would|should)\b", text, re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT_RE.split(text.replace("’", "'")) if s and s.strip()]


def _strip_fillers(clause: str) -> str:
    previous = None
    while previous != clause:
        previous = clause
        clause = FILLER_RE.sub("", clause, count=1).strip()
    return clause


def _topic(instruction: str) -> str:
    best: tuple[int, str] | None = None
    for name, rx in TOPICS:
        m = rx.search(instruction)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    if best:
        return best[1]
    np = re.match(r"^(?P<np>.+?)\s+(?:should|must|need to|needs to|will|shall|may|can)\b", instruction, re.I)
    if np and _is_noun_phrase(np["np"]):
        return slug(" ".join(content_words(np["np"])), max_words=4) or "general"
    return slug(" ".join(content_words(instruction)), max_words=4) or "general"


class RuleExtractor:
    """Extract explicit statements with patterns; no model needed."""

    name = "rules"

    def __init__(self, entities: Entities | None = None) -> None:
        self.entities = entities or Entities()

    async def extract(self, text: str, hints: Sequence[str] = ()) -> list[Candidate]:
        """Return the candidates in a user message (hints are ignored: rules need no context)."""
        return self.extract_sync(text)

    def extract_sync(self, text: str, *, context: str = "") -> list[Candidate]:
        """Return the candidates in a user message.

        Args:
            text: The message.
            context: Earlier text of the thread (e.g. the last memory it produced); it yields no candidates
                but names what "it", "she", "he" or "they" at the start of a clause refer to.
        """
        tracker = _Referents()
        if context:
            for sentence in _sentences(_protect_quotes(context.replace("’", "'"))):
                for raw in CLAUSE_SPLIT_RE.split(sentence.rstrip(".!")):
                    tracker.observe(_unprotect(_strip_fillers(raw)), self.entities)
        out: list[Candidate] = []
        entity_context: str | None = None
        for sentence in _sentences(_protect_quotes(text.replace("’", "'"))):
            if sentence.endswith("?"):
                continue
            carry, begun, opening = "", len(out), True
            for raw in CLAUSE_SPLIT_RE.split(sentence.rstrip(".!")):
                clause = _unprotect(_strip_fillers(raw))
                if not clause:
                    continue
                if MARKER_ONLY_RE.match(clause):
                    carry = clause
                    continue
                if carry:
                    clause, carry = f"{carry} {clause}", ""
                if entity_context and PRONOUN_RE.match(clause):
                    clause = PRONOUN_RE.sub(f"{entity_context}'s ", clause, count=1)
                # "always ..." / "never ..." is a standing instruction only where a sentence starts with it: after
                # "Kestrel Logistics pay quarterly", ", never by card" is about Kestrel, not a rule for the owner
                aside = not opening and ALWAYS_RE.match(clause) is not None
                opening = False
                if PRONOUN_START_RE.match(clause):
                    out.extend(self._pronoun(clause, tracker))
                elif not (found := [] if aside else self._clause(clause)) and self._qualifies(out, begun, clause):
                    # ", no pay-to-rank", ", not cron", ", with a 5% uplift": the statement before it, qualified
                    out[-1] = replace(out[-1], text=f"{out[-1].text.rstrip('.')}, {clause}.")
                else:
                    out.extend(found)
                    tracker.observe(clause, self.entities)
                hit = self.entities.find(clause.casefold())
                if hit:
                    entity_context = re.sub(r"(?:'s|s')$", "", clause[hit[1] : hit[2]])
        return _dedupe(out)

    @staticmethod
    def _qualifies(out: Sequence[Candidate], begun: int, clause: str) -> bool:
        """Return True when a clause that stated nothing qualifies the statement its sentence made just before."""
        return len(out) > begun and out[-1].action == "remember" and _qualifier(clause)

    def _pronoun(self, clause: str, tracker: _Referents) -> list[Candidate]:
        """Resolve a clause opening with it/that/she/he/they against what was named before, or store nothing."""
        m = IT_VERB_RE.match(clause)
        if m and tracker.thing:
            return self._statement(f"{tracker.thing[0]} {m['rest']}", explicit=False)
        if tracker.thing and CHANGE_SIGNAL_RE.search(clause):
            m = IT_UPDATE_RE.match(clause)
            value = _clean(SUBORDINATE_RE.sub("", m["y"])) if m else ""
            if value and _plausible_value(value):
                noun, cop = tracker.thing
                return self._statement(f"{noun} {cop} {value}", explicit=False)
        m = PERSON_PRONOUN_RE.match(clause)
        if m and tracker.person:
            resolved = f"{tracker.person} {'is ' if m['cop'] else ''}{m['rest']}"
            found = self._statement(resolved, explicit=False)
            return [c for c in found if c.subject and not _is_free(c.subject)]
        return []

    def _habit(self, clause: str, *, explicit: bool) -> list[Candidate]:
        """Return a habit: "I usually ...", "every Friday I ...", "we always deploy on ...", "we never ..."."""
        m = WHEN_LEAD_RE.match(clause)
        when = ""
        if m:
            when, adv, rest = m["when"], m["adv"] or "", m["rest"]
        else:
            m = HABIT_RE.match(clause) or WHEN_TAIL_RE.match(clause)
            if not m:
                return []
            adv = m.groupdict().get("adv") or ""
            rest = m["rest"]
            when = m.groupdict().get("when") or ""
        rest = _clean(rest)
        words = rest.split()
        if not words or words[0].casefold() in HABIT_NOT:
            return []
        if len(content_words(rest)) < 2 or TRANSIENT_RE.search(clause) or len(words) > 20:
            return []
        activity = WHEN_CUT_RE.split(f" {rest}", maxsplit=1)[0].strip() or rest
        hit = self.entities.find(activity.casefold())
        entity = hit[0] if hit else "user"
        if hit:
            activity = f"{activity[: hit[1]]} {activity[hit[2] :]}"
        key = slug(" ".join(w for w in content_words(activity) if w not in {"usually", "always"}), max_words=4)
        if not key:
            return []
        negated = "never " if adv.casefold() == "never" else ""
        return [
            Candidate(
                text=_sentence(_clean(clause)),
                kind="fact",
                subject=_subject(entity, f"habit/{key}"),
                value=normalise_value(f"{negated}{when} {rest}".strip()),
                confidence=0.9 if explicit else 0.7,
                explicit=explicit,
            )
        ]

    def _clause(self, clause: str) -> list[Candidate]:
        if re.match(
            r"^(what|who|where|when|why|how|which|do you|can you|could you|would you|is|are|did)\b", clause, re.I
        ):
            return []
        m = FORGET_RE.match(clause)
        if m and not re.match(r"^(don'?t forget|do not forget)\b", clause, re.I):
            return [self._forget(m["rest"])]
        m = REMEMBER_RE.match(clause)
        if m:
            body = _strip_fillers(m["rest"])
            found = self._statement(body, explicit=True)
            return found or [self._note(body, explicit=True)]
        m = DECISION_RE.match(clause)
        if m:
            return self._decision(m["rest"] or m["rest2"] or m["rest3"] or "")
        m = INSTRUCTION_RE.match(clause) or TRAILING_INSTRUCTION_RE.match(clause) or ALWAYS_RE.match(clause)
        if m:
            body = _strip_fillers(m["rest"])
            found = self._statement(body, explicit=True)
            return found or [self._instruction(body)]
        if NEGATION_RE.search(clause):
            return self._negation(clause)
        m = RETIRE_RE.match(clause)
        if m:
            return self._retire([_clean(SUBORDINATE_RE.sub("", m["obj"]))])
        m = LEFT_RE.match(clause)
        if m:
            return self._retire([m["who"].strip(), _clean(m["org"])])
        return self._statement(clause, explicit=False)

    def _retire(self, names: list[str]) -> list[Candidate]:
        """Forget memories mentioning names: "I sold the Skoda", "Jane Fox has left Hartley"."""
        names = [n for n in names if n]
        proper = [n for n in names if re.search(r"\b[A-Z0-9]", n) or self.entities.find(n.casefold())]
        if not proper or len(proper) != len(names):
            return []
        return [
            Candidate(
                text=" ".join(names),
                kind="fact",
                subject=None,
                confidence=0.8,
                explicit=False,
                action="forget",
                mentions=tuple(names),
            )
        ]

    def explicit(self, text: str) -> list[Candidate]:
        """Return what an explicit "remember this" holds: its statements, or the text as a note."""
        found = [replace(c, explicit=True) for c in self.extract_sync(text) if c.action == "remember"]
        if found:
            return found
        body = _strip_fillers(REMEMBER_RE.sub(lambda m: m["rest"], text.strip(), count=1))
        return [self._note(body, explicit=True)] if body else []

    def forget_query(self, text: str) -> Candidate:
        """Return the forget candidate for a query such as "that I drink oat milk" or "my old address"."""
        m = FORGET_RE.match(text.strip())
        return self._forget(m["rest"] if m else text)

    def _forget(self, rest: str) -> Candidate:
        rest = re.sub(r"\s+from (?:your )?memory$", "", _clean(rest), flags=re.I)
        rest = re.sub(r"^(that|it|this|about)\s*$", "", rest, flags=re.I).strip()
        parsed = self._statement(rest, explicit=True) if rest else []
        first = parsed[0] if parsed else None
        return Candidate(
            text=rest,
            kind=first.kind if first else "fact",
            subject=first.subject if first and not _is_free(first.subject) else None,
            value=first.value if first else None,
            confidence=1.0,
            explicit=True,
            action="forget",
        )

    def _negation(self, clause: str) -> list[Candidate]:
        positive = re.sub(r"\b(no longer|any ?more|do not|does not|don'?t|doesn'?t|not)\b", " ", clause, flags=re.I)
        positive = re.sub(r"\s+", " ", positive).strip(" ,.")
        if len(content_words(positive)) < 2:
            return []
        return [self._forget(positive)]

    def _note(self, body: str, *, explicit: bool) -> Candidate:
        text = _clean(body)
        hit = self.entities.find(text.casefold())
        entity = hit[0] if hit else "user"
        words = content_words(text)
        return Candidate(
            text=_sentence(text),
            kind="fact",
            subject=_subject(entity, "note/" + (slug(" ".join(words), max_words=5) or "misc")),
            value=normalise_value(text),
            confidence=0.9 if explicit else 0.6,
            explicit=explicit,
        )

    def _instruction(self, body: str) -> Candidate:
        text = _clean(body)
        return Candidate(
            text=_sentence(f"From now on, {text}"),
            kind="preference",
            subject=_subject("user", f"pref/{_topic(text)}"),
            value=normalise_value(text),
            confidence=0.9,
            explicit=True,
        )

    def _decision(self, body: str) -> list[Candidate]:
        body = _clean(_strip_fillers(body))
        if not body:
            return []
        subject: str | None = None
        value: str | None = None
        m = DECIDE_USE_RE.match(body) or DECIDE_SWITCH_RE.match(body)
        if m:
            entity, attr = parse_subject(m["t"], self.entities)
            subject, value = _subject(entity, attr), m["v"]
        else:
            stated = self._statement(re.sub(r"^that\s+", "", body, flags=re.I), explicit=True)
            if stated and stated[0].subject and not _is_free(stated[0].subject):
                subject, value = stated[0].subject, stated[0].value
        if subject is None:
            hit = self.entities.find(body.casefold())
            entity = hit[0] if hit else "user"
            subject = _subject(entity, "decision/" + (slug(" ".join(content_words(body)), max_words=5) or "misc"))
            value = body
        text = body if re.match(r"^(to|that)\b", body, re.I) else f"that {body}"
        return [
            Candidate(
                text=_sentence(f"We decided {text}".replace("decided that to", "decided to")),
                kind="decision",
                subject=subject,
                value=normalise_value(value),
                confidence=0.9,
                explicit=True,
            )
        ]

    def _statement(self, clause: str, *, explicit: bool) -> list[Candidate]:
        clause = _clean(clause)
        if not clause:
            return []
        m = NAME_IS_MY_RE.match(clause)
        if m and m["name"].split()[0].casefold() not in NOT_NAMES:  # "Priya Shah is my accountant"
            clause = f"{m['poss'].capitalize()} {m['role']} {m['cop']} {m['name']}"
        conf = 0.9 if explicit else 0.7
        m = SWITCH_TOPIC_RE.match(clause)
        if m and _is_noun_phrase(m["t"], self.entities):
            topic, old, new = _clean(m["t"]), _clean(m["a"]), _clean(SUBORDINATE_RE.sub("", m["b"]))
            text = _sentence(f"We use {new} for {topic}")
            about = _subject(*parse_subject(topic, self.entities))
            return [Candidate(text, "fact", about, normalise_value(new), conf, explicit, replaces=old, replacement=new)]
        m = SET_TO_RE.match(clause)
        if m and _is_noun_phrase(m["t"], self.entities):
            entity, attr = self._subject_parts(m["t"], moved=True)
            return [
                Candidate(
                    _sentence(clause), "fact", _subject(entity, attr), normalise_value(_clean(m["y"])), conf, explicit
                )
            ]
        m = USE_FOR_RE.match(clause)
        if m and _is_noun_phrase(m["t"], self.entities):
            entity, attr = parse_subject(m["t"], self.entities)
            value = _clean(m["v"])
            return [
                Candidate(_sentence(clause), "fact", _subject(entity, attr), normalise_value(value), conf, explicit)
            ]
        m = DRIVE_RE.match(clause)
        if m:
            car = _clean(SUBORDINATE_RE.sub("", m["v"]))
            return [Candidate(_sentence(f"I drive {car}"), "fact", "user/car", normalise_value(car), conf, explicit)]
        m = SWITCH_RE.match(clause)
        if m:
            old, new = _clean(m["a"]), _clean(SUBORDINATE_RE.sub("", m["b"]))
            subject: str | None = None
            if m["x"] and _is_noun_phrase(m["x"], self.entities):
                subject = _subject(*parse_subject(m["x"], self.entities))
                text = _sentence(f"{_cap(m['x'])} is {new}")
            else:
                text = _sentence(f"I use {new}")
            return [
                Candidate(text, "fact", subject, normalise_value(new), conf, explicit, replaces=old, replacement=new)
            ]
        m = HOME_RE.match(clause)
        if m:
            city = _clean(SUBORDINATE_RE.sub("", m["v"] or m["v2"] or m["v3"] or ""))
            return [
                Candidate(
                    _sentence(f"My home city is {city}"),
                    "fact",
                    "user/home_city",
                    normalise_value(city),
                    conf,
                    explicit,
                )
            ]
        m = WORK_RE.match(clause)
        if m:
            org = _clean(m["v"] or m["v2"] or "")
            return [
                Candidate(_sentence(f"I work at {org}"), "fact", "user/employer", normalise_value(org), conf, explicit)
            ]
        m = NAME_RE.match(clause)
        if m:
            name = _clean(m["v"])
            return [
                Candidate(_sentence(f"Call me {name}"), "preference", "user/name", normalise_value(name), 0.9, True)
            ]
        m = PREFER_PAIR_RE.match(clause)
        if m:
            a, b = _clean(m["a"]), _clean(SUBORDINATE_RE.sub("", m["b"]))
            pair = "_vs_".join(sorted([slug(a, max_words=3), slug(b, max_words=3)]))
            return [
                Candidate(
                    _sentence(f"I prefer {a} to {b}"),
                    "preference",
                    _subject("user", f"pref/{pair}"),
                    normalise_value(a),
                    conf,
                    explicit,
                )
            ]
        m = PREFER_RE.match(clause)
        if m:
            a = _clean(SUBORDINATE_RE.sub("", m["a"]))
            return [
                Candidate(
                    _sentence(f"I prefer {a}"),
                    "preference",
                    _subject("user", f"pref/{_topic(a)}"),
                    normalise_value(a),
                    conf,
                    explicit,
                )
            ]
        m = LIKE_RE.match(clause)
        if m:
            obj = _clean(SUBORDINATE_RE.sub("", m["obj"]))
            verb = m["verb"].casefold()
            return [
                Candidate(
                    _sentence(f"I {verb} {obj}"),
                    "preference",
                    _subject("user", f"likes/{slug(obj, max_words=4)}"),
                    verb,
                    conf,
                    explicit,
                )
            ]
        m = IAM_RE.match(clause)
        if m and len(m["v"].split()) <= 4:
            what = _clean(SUBORDINATE_RE.sub("", m["v"]))
            if what:
                return [
                    Candidate(
                        _sentence(f"I'm {what}"),
                        "fact",
                        _subject("user", f"is/{slug(what, max_words=3)}"),
                        normalise_value(what),
                        conf,
                        explicit,
                    )
                ]
        m = CHANGED_TO_RE.match(clause)
        if m and _is_noun_phrase(m["x"], self.entities):
            entity, attr = self._subject_parts(m["x"], moved=True)
            value = _clean(m["y"])
            return [
                Candidate(_sentence(clause), "fact", _subject(entity, attr), normalise_value(value), conf, explicit)
            ]
        m = COPULA_RE.match(clause)
        if m and _is_noun_phrase(m["x"], self.entities):
            return self._copula(clause, m, explicit=explicit)
        m = THIRD_PERSON_RE.match(clause)
        if m and m["name"].split()[0].casefold() not in NOT_NAMES | NOT_A_NOUN_PHRASE:
            return self._third_person(m, explicit=explicit)
        habit = self._habit(clause, explicit=explicit)
        if habit:
            return habit
        m = APPOSITION_RE.search(clause)
        if m:
            rel, name = m["rel"].casefold(), m["name"]
            return [
                Candidate(
                    _sentence(f"My {rel}'s name is {name}"),
                    "fact",
                    _subject("user", f"{rel}_name"),
                    normalise_value(name),
                    conf,
                    explicit,
                )
            ]
        return []

    def _third_person(self, m: re.Match[str], *, explicit: bool) -> list[Candidate]:
        """Return what a named person or organisation prefers, likes, uses, how they pay, where they work or live."""
        name, verb, rest = (
            m["name"].strip(),
            m["verb"].casefold().rstrip("s"),
            _clean(SUBORDINATE_RE.sub("", m["rest"])),
        )
        if len(content_words(rest)) < 1 or len(rest.split()) > 15:
            return []
        if verb == "pay" and (PAY_IDIOM_RE.match(rest) or ONE_OFF_RE.search(rest)):
            return []  # "pays attention to detail", "pays the March invoice next Tuesday": no standing terms
        hit = self.entities.find(name.casefold())
        entity = hit[0] if hit else _entity_slug(name)
        if verb == "prefer":
            attr = "contact_preference" if CONTACT_RE.search(rest) else f"pref/{_topic(rest)}"
        elif verb in {"like", "love", "hate"}:
            attr = f"likes/{slug(rest, max_words=4)}"
        elif verb == "live":
            attr = "home"
        elif verb == "work":
            first = content_words(rest)
            attr = f"work_{first[0]}" if first else "work"
        elif verb == "pay":
            method = PAY_METHOD_RE.search(rest) and not PAY_TERMS_RE.search(rest)
            attr = "payment_method" if method else "payment_terms"
        else:
            attr = {"use": "uses", "speak": "languages", "drive": "car"}.get(verb, verb)
        value = verb if verb in {"like", "love", "hate"} else rest
        return [
            Candidate(
                _sentence(m.group(0)),
                "preference" if verb in {"prefer", "like", "love", "hate"} else "fact",
                _subject(entity, attr),
                normalise_value(value),
                0.9 if explicit else 0.7,
                explicit,
            )
        ]

    def _subject_parts(self, noun_phrase: str, *, moved: bool = False) -> tuple[str, str]:
        """Parse a subject; where a relative lives or moved to is their home (`user/sister_home`)."""
        entity, attr = parse_subject(noun_phrase, self.entities)
        if moved and entity == "user" and attr in RELATIONS:
            attr = f"{attr}_home"
        return entity, attr

    def _copula(self, clause: str, m: re.Match[str], *, explicit: bool) -> list[Candidate]:
        x, cop, y = m["x"].strip(), m["cop"].casefold(), _clean(m["y"])
        if not y or re.match(r"^(not|n't|never)\b", y, re.I) or len(y.split()) > 30:
            return []
        if re.match(r"^(he|she|it|they|we|you|i|this|that|there|here)$", x, re.I):
            return []
        proper_name = (
            re.fullmatch(r"(?:[A-Z][\w'-]*\s?){1,3}", x) is not None and self.entities.find(x.casefold()) is None
        )
        if proper_name and y.casefold().startswith("the ") and cop in {"is", "are", "is now", "are now"}:
            entity, attr = parse_subject(y[4:], self.entities)
            value = x
        else:
            entity, attr = self._subject_parts(x, moved=cop.replace("now ", "").startswith("lives"))
            base = cop.replace("now ", "").split()[0]
            noun = VERB_NOUNS.get(base)
            if noun and not attr.endswith(noun):
                attr = f"{attr}_{noun}" if attr else noun
            if re.match(r"^due\b", y, re.I) and not attr.endswith("deadline"):
                attr = f"{attr}_deadline" if attr else "deadline"
            if not attr:
                participle = re.match(r"^(\w+(?:ed|en)|built|run|based|located)\b", y, re.I)
                attr = participle.group(1).casefold() if participle else ""
            value = y
        text = re.sub(r"\s+now\b(?=\s+(?:called|named|costs|runs|uses))", "", clause, flags=re.I)
        text = re.sub(r"\b(is|are) now\b", r"\1", text, flags=re.I)
        kind: MemoryKind = "project" if attr in {"description", "repo"} else "fact"
        return [
            Candidate(
                text=_sentence(_cap(text)),
                kind=kind,
                subject=_subject(entity, attr),
                value=normalise_value(value),
                confidence=0.9 if explicit else 0.7,
                explicit=explicit,
            )
        ]


class _Referents:
    """What the latest clauses named: a thing ("it") with its verb, and a person or organisation ("she", "they")."""

    def __init__(self) -> None:
        self.thing: tuple[str, str] | None = None
        self.person: str | None = None

    def observe(self, clause: str, entities: Entities) -> None:
        """Remember the noun phrase a clause states something about, and the first name it mentions."""
        m = COPULA_RE.match(clause) or PAST_COPULA_RE.match(clause)
        if m and _is_noun_phrase(m["x"], entities) and not re.match(r"^(he|she|they|we|i|you)$", m["x"], re.I):
            cop = m["cop"].casefold().replace("now ", "").replace(" now", "")
            cop = {"was": "is", "were": "are", "used to be": "is", "will be": "is", "will now be": "is"}.get(cop, cop)
            self.thing = (m["x"].strip(), cop)
        for run in NAME_RUN_RE.findall(clause):
            words = [w for w in run.split() if w.casefold() not in NOT_NAMES]
            name = " ".join(words)
            if name and entities.find(name.casefold()) is None and not re.search(r"\d", name):
                self.person = name
                break


def _plausible_value(value: str) -> bool:
    """Return False for what cannot be a new value of a fact: weather, feelings, activities ("raining")."""
    first = value.split()[0].casefold()
    return not (first.endswith("ing") or first in OPINIONS or first in NOT_A_NOUN_PHRASE or len(value.split()) > 10)


def _is_free(subject: str | None) -> bool:
    return subject is None or any(part in subject for part in FREE_SUBJECT_PARTS)


def is_free_subject(subject: str) -> bool:
    """Return True for subjects made from free text (notes, undeclared decisions): they never supersede."""
    return _is_free(subject)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;:")
    text = _cap(text)
    return text if text.endswith((".", "!", "?")) else f"{text}."


QUALIFIER_WORDS = 6  # a tail longer than this after a comma is a clause of its own, not a qualifier
NOT_QUALIFIER_RE = re.compile(
    r"^(?:but|and|so|or|because|which|who|though|although|while|if|when|i|i'm|we|you|he|she|they|it|that|this|"
    r"thanks|thank|please|cheers|ok|okay|lol|right|yes|no\s*$)\b",
    re.IGNORECASE,
)


def _qualifier(clause: str) -> bool:
    """Return True for a short tail after a comma that only qualifies the statement before it ("not cron")."""
    return len(clause.split()) <= QUALIFIER_WORDS and not NOT_QUALIFIER_RE.match(clause) and not clause.endswith("?")


def _dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[tuple[str, str]] = set()
    out = []
    for c in candidates:
        key = (c.action, normalise_text(c.text))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def looks_secret(text: str) -> bool:
    """Return True when a text looks like a password, key, token or card number."""
    return SECRET_RE.search(text) is not None


def triage(candidate: Candidate) -> Triage:
    """Decide core, archive, discard, or refuse (None: not stored at all), with the reason.

    Core holds what should shape every answer: standing instructions and preferences, facts about the
    user, decisions. Archive holds facts about the world stated in passing or on request, recalled by
    similarity. Discard keeps a record of what was judged worthless (never recalled). Secrets are refused.
    """
    c = candidate
    if looks_secret(c.text):
        return Triage(None, "refused: looks like a secret (password, key, token or card number); never stored", 0.0)
    if len(c.text) > MAX_MEMORY_CHARS:
        return Triage(None, f"refused: longer than {MAX_MEMORY_CHARS} characters", 0.0)
    value = (c.value or "").casefold()
    core_value = re.sub(r"\b(very|really|so|quite|pretty|a bit|super|rather)\b", "", value).strip()
    if core_value in OPINIONS and c.kind == "fact":
        return Triage("discarded", "opinion or small talk, not a durable fact", 0.3)
    if not c.explicit and TRANSIENT_RE.search(c.text):
        return Triage("discarded", "only true for now (today / at the moment)", 0.3)
    if len(content_words(c.text)) < 2:
        return Triage("discarded", "too little content to be useful", 0.3)
    confidence = max(0.0, min(1.0, c.confidence))
    subject = c.subject or ""
    if c.kind == "preference":
        return Triage("core", "standing preference or instruction", confidence)
    if c.kind == "decision":
        return Triage("core", "decision that should guide future work", confidence)
    if c.kind == "project":
        return Triage("core", "project context", confidence)
    if subject.startswith("user/") and not _is_free(subject):
        return Triage("core", "fact about you", confidence)
    if c.explicit:
        return Triage("archive", "asked to remember; recalled when relevant", confidence)
    return Triage("archive", "stated in passing; recalled when relevant", confidence)


def _attr_tokens(subject: str) -> tuple[str, list[str]]:
    entity, _, attr = subject.partition("/")
    return entity, [t for t in re.split(r"[/_]", attr) if t]


def same_subject_family(a: str, b: str) -> bool:
    """Return True when two structured subjects name the same thing loosely.

    Same entity, same head word, and one's attribute words a subset of the other's:
    `general/daily_standup` ~ `general/standup`, but not `weekday_support_hours` ~ `weekend_support_hours`.
    """
    if a == b:
        return True
    if is_free_subject(a) or is_free_subject(b):
        return False
    ea, ta = _attr_tokens(a)
    eb, tb = _attr_tokens(b)
    if ea != eb or not ta or not tb or ta[-1] != tb[-1]:
        return False
    return set(ta) <= set(tb) or set(tb) <= set(ta)


def with_method(candidates: Iterable[Candidate], method: str) -> list[Candidate]:
    """Return candidates marked with the extractor that produced them."""
    return [replace(c, method=method) for c in candidates]
