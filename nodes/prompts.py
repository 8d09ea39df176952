"""Core prompts. Specialist prompts live in their agent cards."""

import re

SPECIALIST_FRAME = """You are {agent_id}, one specialist inside Nova, a personal AI system.
Your scope: {description}
{system_prompt}
Answer the user's latest message directly and concisely. If it belongs to another specialist, say which one."""

# Worded as a heading, not as an instruction: the 1.5B model copied "What Nova remembers ... Each is said to the
# user" (and the tool results after it) into its answer 4 times in 5; with this heading, 0 times in 6 (README).
MEMORY_BLOCK = (
    "Notes from Nova's memory about the user and their work (newest truth only; use them only if they help):\n"
    "{memories}"
)
MEMORY_HITS = "Notes from Nova's memory that match:\n{memories}"

# Memories are stored in the user's own words ("my accountant is Priya Shah"). Given to a small model as they are,
# they came back as "You are my accountant, Priya Shah"; turned to the second person first, as "Your accountant
# is Priya Shah".
_TO_YOU = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
    "ourselves": "yourselves",
    "we're": "you're",
    "we've": "you've",
    "we'd": "you'd",
    "we'll": "you'll",
}
_FIRST_PERSON_RE = re.compile(
    r"(?<![\w'\u2019])("
    + "|".join(sorted((re.escape(w).replace("'", "['\u2019]") for w in _TO_YOU), key=len, reverse=True))
    + r")(?![\w'\u2019])",
    re.I,
)
_AGREEMENT_RE = re.compile(r"\b([Yy]ou) (am|was)\b")


def said_to_user(text: str) -> str:
    """Return a memory in the user's own words as said to the user: "my accountant is" -> "your accountant is".

    Abbreviations in capitals (US, ME) and a numeral I ("Phase I is done") are left alone; "I am" and "I was"
    become "you are" and "you were".
    """

    def swap(match: re.Match[str]) -> str:
        word = match.group(1)
        plain = word.replace("\u2019", "'")
        if len(plain) > 1 and plain.isupper() and "'" not in plain:
            return word  # US, ME, MY: an abbreviation, not a pronoun
        if plain == "I" and re.match(r"\s+(is|has)\b", text[match.end() :]):
            return word  # "Phase I is done": a numeral
        new = _TO_YOU[plain.lower()].replace("'", "\u2019" if "\u2019" in word else "'")
        at_start = match.start() == 0 or text[: match.start()].rstrip().endswith((".", "!", "?", ":", "\n"))
        return new.capitalize() if at_start or (word[0].isupper() and word[0] != "I") else new

    turned = _FIRST_PERSON_RE.sub(swap, text)
    return _AGREEMENT_RE.sub(lambda m: f"{m.group(1)} {'are' if m.group(2) == 'am' else 'were'}", turned)


def memory_line(text: str, where: str) -> str:
    """One memory as a prompt line: its text said to the user first, where it is kept after it.

    The text leads so that a small model copying the line into its answer still says something readable.
    """
    return f"- {said_to_user(text)} ({where})"


ROUTER_SYSTEM_PROMPT = """You route a user's request to exactly one specialist agent of a personal AI system.
Candidates (id: scope):
{candidates}
Choose the single candidate whose scope fits the request. If two fit about equally, or none fits, answer
"clarify". Reply with the id exactly as listed, or "clarify", and a one-sentence reason."""

TOOL_PLANNER_PROMPT = """You can use these tools before answering:
{tools}
Pick the one tool that helps answer the user's latest message and the input to give it, or pick "none"
when you can answer already. The tools already used and their results are listed under "Already used";
never pick one of those again with the same input: pick the next tool the answer needs, or "none"."""

CLARIFY_QUESTION = "I can take this a few ways. Which did you mean?"
CLARIFY_CONFIRM = "I'm not sure I read this right. Did you mean {agent}: {scope}?"

TURN_FAILED = (
    "Sorry, I couldn't finish that: {what} failed ({kind}: {message}). Nothing was lost; "
    "send your message again, or run `nova doctor` if it keeps happening."
)
