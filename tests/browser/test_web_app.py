"""The web app in headless Chromium against a real `nova serve` (fake model): one browser, each test on its own.

The browser is shared (starting Chromium is slow); each test signs in when it is not and makes the data it
needs, so any test runs alone (`-k`) as well as in the module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.browser.conftest import ALICE, BOB, WebServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRANSLATE = "translate 'the invoice is overdue' into German"
VAGUE = ("can you look at this", "sort it out", "the usual", "have a go at this", "fix it", "any news?")
seen: dict[str, Any] = {}


def until(check: Callable[[], Any], within: float = 25.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # stale elements while the page re-renders
            last = exc
        time.sleep(0.15)
    raise AssertionError(f"{what} not met within {within}s" + (f" (last error: {last!r})" if last else ""))


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def visible(driver: Any, selector: str, within: float = 25.0) -> Any:
    def check() -> Any:
        return next((e for e in css(driver, selector) if e.is_displayed()), None)

    return until(check, within, f"{selector} shown")


def text_in(driver: Any, selector: str, text: str, within: float = 25.0) -> Any:
    def check() -> Any:
        return next((e for e in css(driver, selector) if text in e.text), None)

    return until(check, within, f"{text!r} in {selector}")


def go(driver: Any, server: WebServer, route: str) -> None:
    if not driver.current_url.startswith(server.url):
        driver.get(f"{server.url}/app/#{route}")
    else:
        driver.execute_script("location.hash = arguments[0]", route)


def send(driver: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = visible(driver, "#message")
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def replies(driver: Any) -> list[Any]:
    return css(driver, "#messages .msg.assistant")


def settled(driver: Any, count: int) -> None:
    """Wait until `count` replies are shown and no run is streaming."""

    def check() -> bool:
        busy = css(driver, "#messages [aria-busy], #messages .agent-mark.pending")
        return len(replies(driver)) == count and not busy and css(driver, "#send")[0].is_enabled()

    until(check, what=f"{count} settled replies")


@pytest.fixture()
def api(web_server: WebServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web_server.url, headers={"x-api-key": ALICE}, timeout=60) as client:
        yield client


@pytest.fixture()
def signed_in(browser: Any, web_server: WebServer) -> Any:
    """The browser signed in as alice (through the login form when it is not), whatever ran before."""
    if browser.get_cookie("nova_session") is None or not browser.current_url.startswith(web_server.url):
        browser.get(f"{web_server.url}/app/")
        if browser.get_cookie("nova_session") is None:
            visible(browser, "#api-key").send_keys(ALICE)
            css(browser, "form.login button[type=submit]")[0].click()
            text_in(browser, "#who", "Signed in as alice")
    return browser


@pytest.fixture()
def chat_thread(api: httpx.Client) -> str:
    """A chat thread with one answered turn (the one the chat test made through the page, when it ran)."""
    if "chat_thread" not in seen:
        tid = api.post("/threads", json={"metadata": {"graph_id": "nova"}}).json()["thread_id"]
        body = {"assistant_id": "nova", "input": {"messages": [{"role": "user", "content": TRANSLATE}]}}
        assert api.post(f"/threads/{tid}/runs/wait", json=body).json()["messages"][-1]["content"].startswith("echo:")
        seen["chat_thread"] = tid
    return str(seen["chat_thread"])


def paused_patch(api: httpx.Client) -> str:
    tid = api.post("/threads", json={"metadata": {"graph_id": "patch"}}).json()["thread_id"]
    out = api.post(
        f"/threads/{tid}/runs/wait",
        json={"assistant_id": "patch", "input": {"messages": [{"role": "user", "content": "tune the router"}]}},
    ).json()
    assert out["__interrupt__"][0]["value"]["action_request"]["action"] == "apply_patch"
    return str(tid)


def test_log_in_with_an_api_key(browser: Any, web_server: WebServer) -> None:
    browser.get(f"{web_server.url}/")
    assert browser.current_url.startswith(f"{web_server.url}/app/")
    key = visible(browser, "#api-key")
    assert browser.get_cookie("nova_session") is None
    screenshot(browser, "login")
    key.send_keys("not-a-real-key")
    css(browser, "form.login button[type=submit]")[0].click()
    text_in(browser, "#login-error", "not valid")
    key.clear()
    key.send_keys(ALICE)
    css(browser, "form.login button[type=submit]")[0].click()
    text_in(browser, "#who", "Signed in as alice")
    cookie = browser.get_cookie("nova_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: invisible to scripts


def test_streamed_reply_marked_with_its_agent_and_why(signed_in: Any, web_server: WebServer) -> None:
    browser = signed_in
    go(browser, web_server, "/chat")
    send(browser, TRANSLATE)
    settled(browser, 1)
    text_in(browser, "#messages .msg.assistant .body", f"echo: {TRANSLATE}")
    mark = text_in(browser, "#messages .msg.assistant .agent-mark", "language.translate")
    until(
        lambda: browser.execute_script(
            "return performance.getEntriesByType('resource').some(e => e.name.includes('/runs/stream'))"
        ),
        what="the reply came from the SSE stream endpoint",
    )
    seen["chat_thread"] = browser.execute_script("return decodeURIComponent(location.hash.split('/')[2])")

    mark.click()
    why = visible(browser, "#why")
    text_in(browser, "#why h2", "Why language.translate")
    assert visible(browser, "#why-method").text == "embedding"
    rows = css(browser, "#why table.candidates tbody tr")
    assert len(rows) >= 2 and rows[0].text.startswith("language.translate")
    assert "closest to language.translate" in why.text
    assert "Memories recalled for this turn" in why.text
    screenshot(browser, "chat")

    wrong = css(browser, "#why [data-correct]")[0]
    target = wrong.get_attribute("data-correct")
    wrong.click()
    text_in(browser, "#correction-status", f"should go to {target}")
    with psycopg.connect(web_server.db_url) as conn:
        row = conn.execute(
            "SELECT text, wrong, correct FROM routing_corrections WHERE user_id = 'alice' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == (TRANSLATE, "language.translate", target)


def test_clarify_question_answered_with_a_button(signed_in: Any, web_server: WebServer, api: httpx.Client) -> None:
    browser = signed_in
    vague = next(
        (t for t in VAGUE if api.post("/nova/route", json={"text": t}).json()["decision"]["chosen"] == "clarify"),
        None,
    )
    assert vague is not None, "none of the vague requests makes the router ask"
    visible(browser, "#new-thread").click()
    until(lambda: not css(browser, "#messages .msg.assistant"), what="a fresh conversation")
    send(browser, vague)
    settled(browser, 1)
    visible(browser, "#messages .agent-mark.is-clarify")
    choice = visible(browser, "#clarify button.choice")
    agent = choice.get_attribute("data-agent")
    assert len(css(browser, "#clarify button.choice")) >= 2
    screenshot(browser, "clarify")
    choice.click()
    settled(browser, 2)
    until(lambda: agent in replies(browser)[-1].text, what=f"a reply from {agent}")
    assert not visible(browser, "#messages").find_elements("css selector", "#clarify button.choice")
    replies(browser)[-1].find_element("css selector", ".agent-mark").click()
    until(lambda: visible(browser, "#why-method").text == "clarify-answer", what="method clarify-answer")
    text_in(browser, "#why .reason", f"you picked {agent}")


def test_approve_a_paused_patch_after_reading_its_diff(
    signed_in: Any, web_server: WebServer, api: httpx.Client
) -> None:
    browser = signed_in
    tid = paused_patch(api)
    go(browser, web_server, "/reviews")
    card = visible(browser, f'article.review[data-thread-id="{tid}"]')
    added = [e.text for e in card.find_elements("css selector", ".diff-add")]
    removed = [e.text for e in card.find_elements("css selector", ".diff-del")]
    assert added == ["+    margin: float = 0.03"] and removed == ["-    margin: float = 0.02"]
    assert "Two agents within 0.03" in card.text and "212 passed" in card.text and "low" in card.text
    screenshot(browser, "reviews")
    card.find_element("css selector", "[data-act=approve]").click()
    until(lambda: "Applied the patch to nodes/router.py" in card.text and "status: idle" in card.text, what="done")
    assert api.get(f"/threads/{tid}").json()["status"] == "idle"


def test_edit_the_diff_in_place_then_approve(signed_in: Any, web_server: WebServer, api: httpx.Client) -> None:
    browser = signed_in
    tid = paused_patch(api)
    go(browser, web_server, "/health")
    go(browser, web_server, "/reviews")
    card = visible(browser, f'article.review[data-thread-id="{tid}"]')
    card.find_element("css selector", "[data-act=edit]").click()
    area = visible(browser, f'article.review[data-thread-id="{tid}"] .editor textarea')
    browser.execute_script(
        "arguments[0].value = arguments[0].value.replace('0.03', '0.04');"
        "arguments[0].dispatchEvent(new Event('input'))",
        area,
    )
    until(lambda: "+    margin: float = 0.04" in [e.text for e in card.find_elements("css selector", ".diff-add")])
    card.find_element("css selector", "[data-act=approve]").click()
    until(lambda: "Applied the edited patch" in card.text, what="the edited patch applied")
    history = api.get(f"/threads/{tid}/state").json()["values"]
    assert "0.04" in history["decision"]["args"]["diff"] and history["decision"]["type"] == "edit"


def test_reject_with_a_comment(signed_in: Any, web_server: WebServer, api: httpx.Client) -> None:
    browser = signed_in
    tid = paused_patch(api)
    go(browser, web_server, "/threads")
    go(browser, web_server, "/reviews")
    card = visible(browser, f'article.review[data-thread-id="{tid}"]')
    card.find_element("css selector", "[data-act=reject]").click()
    comment = visible(browser, f'article.review[data-thread-id="{tid}"] .reject-box textarea')
    comment.send_keys("too risky before the release")
    card.find_element("css selector", "[data-act=send-reject]").click()
    until(lambda: "Not applied. Your comment: too risky before the release" in card.text, what="the rejection")
    values = api.get(f"/threads/{tid}/state").json()["values"]
    assert values["decision"] == {"type": "respond", "args": "too risky before the release"}


def test_a_review_decided_elsewhere_shows_a_banner(signed_in: Any, web_server: WebServer, api: httpx.Client) -> None:
    browser = signed_in
    tid = paused_patch(api)
    go(browser, web_server, "/threads")
    go(browser, web_server, "/reviews")
    card = visible(browser, f'article.review[data-thread-id="{tid}"]')
    api.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "patch", "command": {"resume": {"type": "accept"}}})
    card.find_element("css selector", "[data-act=approve]").click()
    banner = text_in(browser, "#banner", "Already decided")
    assert "not waiting at an interrupt" in banner.text
    screenshot(browser, "review-conflict")


def test_memory_search_and_supersession_chain(
    signed_in: Any, web_server: WebServer, api: httpx.Client, chat_thread: str
) -> None:
    browser = signed_in
    if api.get("/nova/memory").status_code == 404:
        pytest.skip("this checkout has no /nova/memory endpoints yet (api/routes/memory.py)")
    # Stated through the memory write path (the chat's memory agent is a tool agent the fake model cannot drive).
    thread = chat_thread
    for text in ("my editor is Vim", "I switched from Vim to Helix last month"):
        assert api.post("/nova/memory", json={"text": text, "thread_id": thread}).status_code == 201
    chain = api.get("/nova/memory/subjects/user%2Feditor/history").json()["memories"]
    assert [m["status"] for m in chain] == ["superseded", "active"], chain
    go(browser, web_server, "/memory")
    query = visible(browser, "#memory-q")
    query.send_keys("editor")
    query.submit()
    text_in(browser, "#memory-hits", "Helix")
    visible(browser, '#memory-hits a.subject[data-subject="user/editor"]').click()
    items = until(lambda: len(css(browser, "#chain > li")) == 2 and css(browser, "#chain > li"), what="the chain")
    assert "superseded" in items[0].text and "Vim" in items[0].text and "replaced by" in items[0].text
    assert "active" in items[1].text and "Helix" in items[1].text
    assert items[0].find_element("css selector", ".provenance a").get_attribute("href")
    assert css(browser, "#memory-hits"), "the search results stay beside the history"
    screenshot(browser, "memory")


def test_threads_timeline_and_health_charts(
    signed_in: Any, web_server: WebServer, api: httpx.Client, chat_thread: str
) -> None:  # chat_thread: an idle thread among the interrupted and failed ones
    browser = signed_in
    patch_thread = paused_patch(api)
    failing = api.post("/threads", json={"metadata": {"graph_id": "nova"}}).json()["thread_id"]
    body = {"assistant_id": "nova", "input": {"messages": [{"role": "user", "content": "@language.proofread FAIL: x"}]}}
    assert "__error__" in api.post(f"/threads/{failing}/runs/wait", json=body).json()
    go(browser, web_server, "/threads")
    visible(browser, "#threads-table tbody tr[data-thread-id]")
    until(lambda: {"idle", "interrupted", "error"} <= {e.text for e in css(browser, "#threads-table .badge")})
    screenshot(browser, "threads")
    go(browser, web_server, f"/threads/{failing}")
    visible(browser, "#resume")
    go(browser, web_server, f"/threads/{patch_thread}")
    until(lambda: len(css(browser, "#timeline li")) >= 3, what="the timeline")
    assert "patch" in visible(browser, "main").text

    go(browser, web_server, "/health")
    text_in(browser, "#checks", "database")
    assert visible(browser, "#ready").text == "ready"
    until(lambda: len(css(browser, "svg.chart")) == 2, what="two charts")
    assert css(browser, "svg.chart rect") and css(browser, "svg.chart circle")
    screenshot(browser, "health")


def test_readable_at_phone_width(signed_in: Any, web_server: WebServer, chat_thread: str) -> None:
    browser = signed_in
    browser.set_window_size(390, 844)
    try:
        go(browser, web_server, f"/chat/{chat_thread}")
        text_in(browser, "#messages .msg.assistant .body", "echo:")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px at phone width"
        screenshot(browser, "phone-chat")
        go(browser, web_server, "/reviews")
        visible(browser, "#reviews")
        assert browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 1
    finally:
        browser.set_window_size(1280, 900)


def test_a_reply_cut_off_and_retried_streams_only_the_answer(signed_in: Any, web_server: WebServer) -> None:
    # The fake model drops the first streamed answer to a CUTONCE message after two words and the reply node
    # retries: the bubble drops those words instead of running the retried answer on after them.
    browser = signed_in
    go(browser, web_server, "/chat")
    visible(browser, "#message")
    browser.execute_script("""
        window.__bubbles = [];
        new MutationObserver(() => {
          const bodies = document.querySelectorAll('#messages .msg.assistant .body.streaming');
          if (bodies.length) window.__bubbles.push(bodies[bodies.length - 1].textContent);
        }).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
    """)
    text = "what is the capital of Peru? CUTONCE"
    count = len(replies(browser))
    send(browser, text)
    settled(browser, count + 1)
    answer = f"echo: {text}"
    text_in(browser, "#messages .msg.assistant:last-child .body", answer)
    shown: list[str] = browser.execute_script("return window.__bubbles")
    assert "echo: what " in shown, shown  # the cut-off attempt was streamed ...
    assert all(answer.startswith(s) for s in shown), shown  # ... and never had the retried answer run on after it


def test_what_a_turn_stored_in_memory_is_shown_under_its_reply(signed_in: Any, web_server: WebServer) -> None:
    browser = signed_in
    go(browser, web_server, "/chat")
    visible(browser, "#message")
    count = len(replies(browser))
    send(browser, "my dentist is Dr Amara Osei in Headingley")
    settled(browser, count + 1)
    note = text_in(browser, "#messages .msg.memory-note", "Dr Amara Osei")
    assert note.text.startswith("Memory: stored in"), note.text
    send(browser, "what is the capital of Peru?")
    settled(browser, count + 2)
    assert not css(browser, "#messages .msg.memory-note"), "a turn that stored nothing shows no memory note"


def test_keyboard_reaches_the_composer_and_sends(signed_in: Any, web_server: WebServer) -> None:
    browser = signed_in
    from selenium.webdriver.common.keys import Keys

    go(browser, web_server, "/threads")
    go(browser, web_server, "/chat")  # opening the chat page puts the focus in the composer
    until(lambda: browser.switch_to.active_element.get_attribute("id") == "message", what="the composer focused")
    browser.execute_script("document.getElementById('skip').focus()")
    assert browser.switch_to.active_element.get_attribute("id") == "skip"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    assert browser.execute_script("return location.hash").startswith("#/chat")
    nav = css(browser, "nav a[data-page=reviews]")[0]
    nav.send_keys(Keys.ENTER)
    until(lambda: browser.execute_script("return location.hash") == "#/reviews", what="keyboard navigation")


def test_session_cookie_and_csrf_rules(web_server: WebServer, chat_thread: str) -> None:  # alice has a thread
    with httpx.Client(base_url=web_server.url, timeout=30) as raw:
        assert raw.post("/web/login", json={"api_key": "not-a-real-key"}).status_code == 401
        assert raw.post("/web/login", data={"api_key": ALICE}).status_code in (415, 422)
        login = raw.post("/web/login", json={"api_key": ALICE})
        assert login.status_code == 200 and login.json()["user"] == "alice"
        flags = login.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "max-age=43200" in flags
        csrf = login.json()["csrf"]
        assert raw.get("/info").status_code == 200
        assert raw.get("/web/api/session").json()["csrf"] == csrf
        denied = raw.post("/threads/search", json={})
        assert denied.status_code == 403 and "CSRF" in denied.json()["detail"]
        assert raw.post("/threads/search", json={}, headers={"x-csrf-token": csrf + "x"}).status_code == 403
        mine = raw.post("/threads/search", json={"limit": 100}, headers={"x-csrf-token": csrf})
        assert mine.status_code == 200 and mine.json()
        as_bob = raw.post("/threads/search", json={"limit": 100}, headers={"x-api-key": BOB})
        assert as_bob.status_code == 200 and as_bob.json() == []  # a key wins over the cookie, and needs no CSRF

        cookie = raw.cookies["nova_session"]
        body, _, mac = cookie.partition(".")
        raw.cookies.clear()
        raw.cookies.set("nova_session", body + "." + ("A" if mac[0] != "A" else "B") + mac[1:])
        assert raw.get("/info").status_code == 401
        assert "expired" in raw.get("/web/api/session").json()["detail"]
        raw.cookies.clear()
        raw.cookies.set("nova_session", cookie)
        assert raw.post("/web/logout").status_code == 403
        out = raw.post("/web/logout", headers={"x-csrf-token": csrf})
        assert out.status_code == 204 and "max-age=0" in out.headers["set-cookie"].lower()


def test_an_expired_session_asks_to_log_in_again(signed_in: Any, web_server: WebServer) -> None:
    browser = signed_in
    go(browser, web_server, "/chat")
    visible(browser, "#message")
    browser.delete_cookie("nova_session")
    go(browser, web_server, "/threads")
    text_in(browser, "#login-error", "session has expired")
    visible(browser, "#api-key").send_keys(ALICE)
    css(browser, "form.login button[type=submit]")[0].click()
    text_in(browser, "#who", "Signed in as alice")


def test_error_banner_when_the_server_stops(signed_in: Any, web_server: WebServer) -> None:
    browser = signed_in
    go(browser, web_server, "/chat")
    visible(browser, "#message")
    web_server.stop()
    text_in(browser, "#banner", "Nova is not reachable", within=30)
    send(browser, "are you there?")
    text_in(browser, "#messages .msg.assistant.failed", "The run failed: Nova is not reachable")
    screenshot(browser, "error-banner")
