"""Memory extraction without a model, subject normalisation, triage, the workspace file, scenario parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodes.memory_eval import ScenarioError, parse_scenarios
from nodes.memory_extract import ExtractedMemory, MemoryExtraction, ModelExtractor
from nodes.memory_records import MemoryExport
from nodes.memory_rules import (
    Candidate,
    Entities,
    RuleExtractor,
    looks_secret,
    normalise_subject,
    normalise_text,
    parse_subject,
    same_subject_family,
    triage,
)
from nodes.models import StaticModels
from nodes.workspace import WorkspaceError, load_workspace, project_pack
from tests.fakes import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "graphs" / "workspace" / "sample.toml"
SCENARIOS = ROOT / "evals" / "memory_scenarios.jsonl"


@pytest.fixture(scope="module")
def rules() -> RuleExtractor:
    return RuleExtractor(Entities.from_workspace(load_workspace(SAMPLE)))


def one(rules: RuleExtractor, text: str) -> Candidate:
    found = rules.extract_sync(text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("text", "subject", "value"),
    [
        ("remember that my home city is Sheffield", "user/home_city", "sheffield"),
        ("I've moved to York now", "user/home_city", "york"),
        ("my mobile number is 07700 900123", "user/phone_number", "07700 900123"),
        ("my GitHub handle is now jd-builds", "user/github_username", "jd-builds"),
        ("fyi Hartley & Co's support hours are 9 to 5", "client:hartley/support_hours", "9 to 5"),
        ("the support hours at Hartley are now 8 to 6", "client:hartley/support_hours", "8 to 6"),
        ("the AIREP staging server is now called kestrel", "project:airep/staging_server", "kestrel"),
        ("the Find a Sign basic listing costs £29 a month", "project:findasign/basic_listing_price", "£29 month"),
        ("Sunita is the practice manager at Brightwater Dental", "brightwater_dental/practice_manager", "sunita"),
        ("the van's registration is YK19 KTR", "van/registration", "yk19 ktr"),
        ("I now work for Kestrel Labs", "user/employer", "kestrel labs"),
        ("call me Jon from now on", "user/name", "jon"),
    ],
)
def test_explicit_statements_get_normalised_subjects(rules: RuleExtractor, text: str, subject: str, value: str) -> None:
    cand = one(rules, text)
    assert (cand.subject, cand.value, cand.action) == (subject, value, "remember")


def test_x_is_now_y_drops_now_from_the_stored_text(rules: RuleExtractor) -> None:
    cand = one(rules, "heads up, the AIREP staging server is now called kestrel")
    assert cand.text == "The AIREP staging server is called kestrel."


def test_from_now_on_is_a_preference_keyed_by_topic(rules: RuleExtractor) -> None:
    british = one(rules, "from now on, use British spelling in everything you write")
    american = rules.extract_sync("From now on use American spelling, the new client is in Boston")[0]
    assert british.kind == american.kind == "preference"
    assert british.subject == american.subject == "user/pref/spelling"
    assert american.text == "From now on, use American spelling."


def test_we_decided_is_a_decision_about_the_topic(rules: RuleExtractor) -> None:
    first = one(rules, "we decided to use Stripe for AIREP payments")
    second = one(rules, "we decided to switch AIREP payments to GoCardless, the card fees were too high")
    assert first.kind == second.kind == "decision"
    assert first.subject == second.subject == "project:airep/payments"
    assert "Stripe" not in second.text


def test_switched_from_a_to_b_names_the_old_value(rules: RuleExtractor) -> None:
    cand = one(rules, "I switched from Vim to Helix last month")
    assert cand.subject is None and cand.replaces == "Vim" and cand.replacement == "Helix"


def test_forget_and_no_longer_are_forget_actions(rules: RuleExtractor) -> None:
    cand = one(rules, "forget that I drink oat milk")
    assert (cand.action, cand.text) == ("forget", "I drink oat milk")
    quit_job = one(rules, "I no longer work at Northwind Analytics")
    assert (quit_job.action, quit_job.subject) == ("forget", "user/employer")
    sold = one(rules, "I sold the Skoda")
    assert (sold.action, sold.mentions) == ("forget", ("Skoda",))


def test_questions_requests_and_small_talk_extract_nothing(rules: RuleExtractor) -> None:
    for text in ("is my home city York?", "what's the Hartley VAT number again?", "thanks, that's great", "haha ok"):
        assert rules.extract_sync(text) == [], text


def test_fact_in_passing_is_found_inside_a_request(rules: RuleExtractor) -> None:
    found = rules.extract_sync("Can you draft the invoice email? Oh and Hartley's VAT number is GB123456789.")
    assert [c.subject for c in found] == ["client:hartley/vat_number"]


def test_quotes_survive_clause_splitting(rules: RuleExtractor) -> None:
    cand = one(rules, "from now on, sign off my emails with 'Cheers, Sam'")
    assert "'Cheers, Sam'" in cand.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "My accountant is Priya Shah and she prefers email over calls.",
            [("user/accountant", "priya shah"), ("priya_shah/contact_preference", "email over calls")],
        ),
        ("Our office is in Leeds and it opens at 9.", [("general/office", "leeds"), ("general/office_opening", "9")]),
        ("My favourite film is Thelma and Louise.", [("user/favourite_film", "thelma and louise")]),
    ],
)
def test_and_before_a_pronoun_starts_a_new_clause(
    rules: RuleExtractor, text: str, expected: list[tuple[str, str]]
) -> None:
    # Without the split the first value swallowed the second clause ("priya shah and she prefers email ...").
    assert [(c.subject, c.value) for c in rules.extract_sync(text)] == expected


@pytest.mark.parametrize(
    ("text", "subject", "value", "stored"),
    [
        ("Priya Shah is my accountant.", "user/accountant", "priya shah", "My accountant is Priya Shah."),
        ("Dr Patel is now my dentist", "user/dentist", "dr patel", "My dentist is Dr Patel."),
        ("Sunita is our practice manager", "general/practice_manager", "sunita", "Our practice manager is Sunita."),
    ],
)
def test_name_is_my_role_is_keyed_by_the_role(
    rules: RuleExtractor, text: str, subject: str, value: str, stored: str
) -> None:
    # The same fact said either way round lands on one subject, so a new accountant supersedes the old one.
    cand = one(rules, text)
    assert (cand.subject, cand.value, cand.text) == (subject, value, stored)
    assert [c.subject for c in rules.explicit("It is my car")] != ["user/car"]


def test_pronoun_refers_to_the_entity_named_earlier(rules: RuleExtractor) -> None:
    found = rules.extract_sync("Jane Fox has left Hartley; their office manager is now Tom Hill")
    assert [c.action for c in found] == ["forget", "remember"]
    assert found[1].subject == "client:hartley/office_manager"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Client:Hartley/Support Hours", "client:hartley/support_hours"),
        ("home city", "user/home_city"),
        ("user//pref/ spelling ", "user/pref/spelling"),
    ],
)
def test_normalise_subject(raw: str, expected: str) -> None:
    assert normalise_subject(raw) == expected


def test_normalise_subject_refuses_empty_keys() -> None:
    with pytest.raises(ValueError, match="no letters"):
        normalise_subject("// !!")


def test_parse_subject_strips_corporate_suffixes_for_unknown_entities() -> None:
    assert parse_subject("Northwind Ltd's finance contact", Entities()) == ("northwind", "finance_contact")


def test_subject_family_matches_loose_keys_but_not_different_things() -> None:
    assert same_subject_family("general/daily_standup", "general/standup")
    assert not same_subject_family("client:hartley/weekday_support_hours", "client:hartley/weekend_support_hours")
    assert not same_subject_family("user/note/drink_oat_milk", "user/note/drink_oat")


def test_normalise_text_is_the_exact_duplicate_key() -> None:
    assert normalise_text("The van's registration is YK19 KTR.") == normalise_text("the van's registration is yk19 ktr")


@pytest.mark.parametrize(
    ("cand", "tier", "reason"),
    [
        (Candidate("From now on, use British spelling.", "preference", "user/pref/spelling"), "core", "preference"),
        (Candidate("My home city is York.", "fact", "user/home_city", "york"), "core", "about you"),
        (Candidate("We decided to use Stripe.", "decision", "project:airep/payments"), "core", "decision"),
        (Candidate("Hartley's VAT number is GB1.", "fact", "client:hartley/vat_number"), "archive", "in passing"),
        (
            Candidate("Hartley's VAT number is GB1.", "fact", "client:hartley/vat_number", explicit=True),
            "archive",
            "asked to remember",
        ),
        (Candidate("The new house is lovely.", "fact", "general/house", "lovely"), "discarded", "opinion"),
        (Candidate("My train is late today.", "fact", "user/train", "late"), "discarded", "only true for now"),
        (Candidate("My AIREP password is hunter2.", "fact", "project:airep/password"), None, "secret"),
        (Candidate("x" * 2001, "fact", "user/note/x", explicit=True), None, "longer than"),
    ],
)
def test_triage_decides_a_tier_and_records_why(cand: Candidate, tier: str | None, reason: str) -> None:
    decision = triage(cand)
    assert decision.tier == tier
    assert reason in decision.reason


def test_secrets_are_recognised() -> None:
    assert looks_secret("the api key is sk-abc123def456ghi789")
    assert looks_secret("card 4111 1111 1111 1111")
    assert not looks_secret("the van's registration is YK19 KTR")


def test_sample_workspace_declares_the_four_projects() -> None:
    workspace = load_workspace(SAMPLE)
    assert [p.slug for p in workspace.projects] == ["airep", "findasign", "nova", "client-hartley"]
    hartley = workspace.project("client-hartley")
    assert hartley is not None and hartley.entity == "client:hartley" and hartley.namespace == "project:client-hartley"
    airep = workspace.project("airep")
    assert airep is not None
    subjects = [s for s, _ in project_pack(airep)]
    assert subjects[0] == "project:airep/description" and "project:airep/database_url" in subjects


def test_workspace_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "ws.toml"
    bad.write_text('[[projects]]\nslug = "Bad Slug"\nname = "x"\ndescription = "y"\n')
    with pytest.raises(WorkspaceError, match=r"ws.toml: projects.0.slug"):
        load_workspace(bad)
    with pytest.raises(WorkspaceError, match="not found"):
        load_workspace(tmp_path / "missing.toml")


def test_workspace_redacts_database_passwords(tmp_path: Path) -> None:
    path = tmp_path / "ws.toml"
    path.write_text(
        '[[projects]]\nslug = "p"\nname = "P"\ndescription = "d"\ndatabase_url = "postgresql://u:s3cret@h/db"\n'
    )
    texts = [t for _, t in project_pack(load_workspace(path).projects[0])]
    assert not any("s3cret" in t for t in texts)


def test_shipped_scenarios_parse_and_cover_the_issue() -> None:
    scenarios = parse_scenarios(SCENARIOS.read_text(encoding="utf-8").splitlines())
    assert len(scenarios) >= 40
    multi_user = [s for s in scenarios if len({st.user for st in s.steps}) > 1]
    superseding = [s for s in scenarios if any(st.reject for st in s.steps if st.ask)]
    assert len(multi_user) >= 6 and len(superseding) >= 25


def test_bad_scenario_lines_are_reported_with_line_numbers() -> None:
    lines = [
        json.dumps({"id": "a", "steps": [{"user": "u1", "thread": "t", "say": "hi"}]}),
        "{not json",
        json.dumps({"id": "a", "steps": [{"user": "u1", "thread": "t", "say": "hi"}]}),
        json.dumps({"id": "b", "steps": [{"user": "u1", "thread": "t", "say": "x", "ask": "y"}]}),
    ]
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(lines)
    message = str(info.value)
    assert "line 2: not valid JSON" in message
    assert "line 3: id 'a' already used on line 1" in message
    assert "line 4 step 1: exactly one of 'say' or 'ask'" in message


def test_export_records_refuse_oversized_text_and_bad_subjects() -> None:
    base = {
        "id": "00000000-0000-0000-0000-000000000001",
        "namespace": "user",
        "text": "ok",
        "kind": "fact",
        "subject": "user/x",
        "tier": "core",
        "extracted_at": "2026-01-01T00:00:00Z",
        "method": "rules",
        "confidence": 0.5,
        "valid_from": "2026-01-01T00:00:00Z",
        "created_at": "2026-01-01T00:00:00Z",
    }
    MemoryExport.model_validate(base)
    with pytest.raises(ValueError, match="at most 2000"):
        MemoryExport.model_validate({**base, "text": "y" * 2001})
    with pytest.raises(ValueError, match="entity/attribute"):
        MemoryExport.model_validate({**base, "subject": "Not A Subject"})
    with pytest.raises(ValueError, match="superseded_at"):
        MemoryExport.model_validate({**base, "status": "superseded"})


async def test_model_extractor_uses_structured_output_and_normalises_subjects() -> None:
    answer = MemoryExtraction(
        memories=[ExtractedMemory(text="My editor is Helix.", kind="fact", subject="User/Editor", value="Helix")]
    )
    model = ScriptedModel(structured=[answer])
    extractor = ModelExtractor(StaticModels(model), Entities())
    found = await extractor.extract("I switched from Vim to Helix", hints=["user/editor: My editor is Vim."])
    assert [(c.subject, c.value, c.method) for c in found] == [("user/editor", "helix", "model")]


async def test_model_extractor_falls_back_to_rules_when_the_model_fails() -> None:
    model = ScriptedModel(fail_first=[TimeoutError("slow")])
    extractor = ModelExtractor(StaticModels(model), Entities())
    found = await extractor.extract("my home city is Leeds")
    assert [(c.subject, c.method) for c in found] == [("user/home_city", "rules")]
    assert extractor.failures == 1


@pytest.mark.parametrize(
    ("text", "subject", "value"),
    [
        ("I usually walk the dog before breakfast", "user/habit/walk_dog", "walk dog before breakfast"),
        (
            "every Tuesday we review the Nova backlog",
            "project:nova/habit/review_backlog",
            "every tuesday review nova backlog",
        ),
        (
            "we always release Find a Sign on Thursdays",
            "project:findasign/habit/release",
            "release find sign thursdays",
        ),
        ("we never merge on Fridays", "user/habit/merge", "never merge fridays"),
        ("I call my mum every Sunday", "user/habit/call_mum", "every sunday call my mum"),
        ("I tend to answer email after lunch", "user/habit/answer_email", "answer email after lunch"),
    ],
)
def test_habits_are_facts_keyed_by_the_activity(rules: RuleExtractor, text: str, subject: str, value: str) -> None:
    cand = one(rules, text)
    assert (cand.subject, cand.value, cand.kind, cand.action) == (subject, value, "fact", "remember")


def test_a_changed_habit_keeps_its_subject_and_changes_its_value(rules: RuleExtractor) -> None:
    before = one(rules, "we always release Find a Sign on Thursdays")
    after = one(rules, "we always release Find a Sign on Tuesdays now")
    assert before.subject == after.subject and before.value != after.value
    assert after.text == "We always release Find a Sign on Tuesdays."


@pytest.mark.parametrize(
    "text",
    [
        "I usually forget, haha",
        "I always think about that",
        "today I usually skip breakfast",
        "why do we always do this?",
        "I'm usually tired",
        "we always end up here",
    ],
)
def test_vague_or_passing_habits_are_not_extracted(rules: RuleExtractor, text: str) -> None:
    assert rules.extract_sync(text) == []


def test_it_in_the_same_message_refers_to_what_was_just_named(rules: RuleExtractor) -> None:
    [cand] = rules.extract_sync("The Bristol warehouse hours were 7 to 3. It's now 8 to 4.")
    assert (cand.subject, cand.value, cand.text) == (
        "bristol/warehouse_hours",
        "8 to 4",
        "The Bristol warehouse hours are 8 to 4.",
    )


def test_it_in_a_later_message_refers_to_the_threads_last_memory(rules: RuleExtractor) -> None:
    context = "Hartley's support hours are 9 to 5."
    [cand] = rules.extract_sync("oh, it's changed to 10 to 4", context=context)
    assert (cand.subject, cand.value) == ("client:hartley/support_hours", "10 to 4")
    [price] = rules.extract_sync("it now costs £12 a month", context="The Nova hosting plan costs £9 a month.")
    assert price.subject == one(rules, "The Nova hosting plan costs £9 a month").subject
    assert price.value == "£12 month"


def test_she_he_they_refer_to_the_last_named_person(rules: RuleExtractor) -> None:
    found = rules.extract_sync("Tom Reeves is my new accountant. He prefers WhatsApp to phone calls.")
    assert [(c.subject, c.value) for c in found][-1] == ("tom_reeves/contact_preference", "whatsapp to phone calls")
    [later] = rules.extract_sync("she prefers texts", context="My dentist is Dr Amara Obi.")
    assert (later.subject, later.text) == ("dr_amara_obi/contact_preference", "Dr Amara Obi prefers texts.")
    [org] = rules.extract_sync("they use Sage now", context="Ledgerline do the payroll.")
    assert (org.subject, org.value) == ("ledgerline/uses", "sage")


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("she prefers email", ""),
        ("it's now raining", "Hartley's support hours are 9 to 5."),
        ("it's lovely now", "The Nova hosting plan costs £9 a month."),
        ("they said it was fine", "Ledgerline do the payroll."),
        ("she says phone calls interrupt her clinic", "Sunita is the practice manager."),
        ("he thinks so", "Dan Price is the designer."),
    ],
)
def test_pronouns_without_a_usable_referent_store_nothing(rules: RuleExtractor, text: str, context: str) -> None:
    assert rules.extract_sync(text, context=context) == []


def test_we_have_moved_is_not_a_subject_and_note_that_is_a_filler(rules: RuleExtractor) -> None:
    assert rules.extract_sync("we've moved to the new office") == []
    cand = one(rules, "note that the Hartley billing contact is Ann Lee")
    assert (cand.subject, cand.value) == ("client:hartley/billing_contact", "ann lee")


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        # The tail after a comma was dropped: the point of the fact went with it.
        (
            "Find a Sign uses a transparent listing model, no pay-to-rank",
            ["Find a Sign uses a transparent listing model, no pay-to-rank."],
        ),
        ("AIREP uses Celery for the Sage sync, not cron", ["AIREP uses Celery for the Sage sync, not cron."]),
        ("Hartley & Co renews in March, with a 5% uplift", ["Hartley & Co renews in March, with a 5% uplift."]),
        # A clause of its own stays one; an aside or thanks qualifies nothing.
        ("my editor is Vim, my city is York", ["My editor is Vim.", "My city is York."]),
        ("my editor is Vim, but honestly who knows", ["My editor is Vim."]),
        ("my editor is Vim, thanks", ["My editor is Vim."]),
        ("what's the weather, no rush", []),
        # "never ..." after a statement about someone else is no standing instruction of the owner's: it
        # qualifies how they pay.
        ("Kestrel Logistics pay quarterly, never by card", ["Kestrel Logistics pay quarterly, never by card."]),
        ("my train is the 7:15, always in coach C", ["My train is the 7:15, always in coach C."]),
    ],
)
def test_a_short_tail_after_a_comma_qualifies_the_statement_before_it(
    rules: RuleExtractor, text: str, stored: list[str]
) -> None:
    assert [c.text for c in rules.extract_sync(text) if c.action == "remember"] == stored


@pytest.mark.parametrize(
    ("text", "subject", "value"),
    [
        ("Kestrel pay by BACS only", "kestrel/payment_method", "by bacs only"),
        ("Hartley now pays on 14-day terms", "client:hartley/payment_terms", "14-day terms"),
        ("Kestrel Logistics pay quarterly, never by card", "kestrel_logistics/payment_terms", "quarterly"),
    ],
)
def test_how_a_client_pays_is_a_fact_about_them(rules: RuleExtractor, text: str, subject: str, value: str) -> None:
    # "Kestrel Logistics pay quarterly, never by card" was said to Nova twice and stored neither time.
    [found] = rules.extract_sync(text)
    assert (found.subject, found.value, found.kind) == (subject, value, "fact")


@pytest.mark.parametrize(
    "text",
    [
        "Pay Wayne on Friday",
        "I pay the rent monthly",
        # One-off payments and idioms are no standing terms (and would replace the real ones).
        "Kestrel Logistics pays the March invoice next Tuesday",
        "Kestrel Logistics pays me 4k on Monday",
        "Sam pays me back tomorrow",
        "Joanne pays attention to detail",
        "Patience pays off in the end",
        "Unless Kestrel pays we stop work",
        # A weekday leading a sentence is no one's name.
        "Friday works for me",
    ],
)
def test_no_fact_about_how_someone_pays(rules: RuleExtractor, text: str) -> None:
    assert rules.extract_sync(text) == []
