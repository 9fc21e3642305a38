"""Open WebUI against ragd, in a real headless browser.

Runs inside the ``openwebui`` client virtualenv (open-webui and playwright, pinned in
``lab/clients/requirements/openwebui.txt``) with Debian's ``chromium``. It starts Open WebUI pointed
at ragd's OpenAI base URL (offline: no model downloads, no Ollama, no login), then in the browser:

- asks an English and a Korean question in new chats, each as a user types it;
- asserts the answer streamed (ragd sent it to Open WebUI as several SSE pieces, from ragd's log), the
  citations are visible (Open WebUI's "N Sources" control, and the source titles once opened),
  the chat got ragd's title (the title task answered and parsed), and ``ragd-embed`` is not offered
  in the model selector;
- saves a screenshot of each answer (PNG) in the results folder;
- sends Open WebUI's own task templates (title, tags, follow-ups, queries...) to ragd and asserts
  each is recognised and answered in the JSON Open WebUI parses;
- reads ragd's log: no request was refused by the rails, and no task request was retrieved for.

``--openwebui-url`` reuses a running Open WebUI instead of starting one (for iterating by hand).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.clients.report import Report
from lab.clients.server import RagdServer, free_port, log_records, stop_process, wait_http

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTIONS = (
    ("en", "What is reciprocal rank fusion?", ("Reciprocal rank fusion",)),
    ("ko", "한국어 형태소 분석은 왜 필요한가요?", ("한국어 형태소 분석",)),
)
ANSWER_TIMEOUT_S = 420.0
TASK_WAIT_S = 90.0
STARTUP_TIMEOUT_S = 900.0
PAGE_TIMEOUT_MS = 180_000


def openwebui_env(ragd: RagdServer, data_dir: Path, port: int) -> dict[str, str]:
    """Open WebUI's settings for one OpenAI-compatible connection to ragd, offline and without login.

    Its own RAG embeddings also go to ragd (``ragd-embed``), so it loads no local model.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGD_", "OPENAI_"))}
    env.update({
        "DATA_DIR": str(data_dir), "PORT": str(port), "WEBUI_AUTH": "False", "ENABLE_OLLAMA_API": "False",
        "OPENAI_API_BASE_URL": ragd.openai_base, "OPENAI_API_KEY": "none", "DEFAULT_MODELS": "ragd",
        "TASK_MODEL_EXTERNAL": "ragd-chat",
        "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1", "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
        "RAG_RERANKING_MODEL_AUTO_UPDATE": "False", "RAG_EMBEDDING_ENGINE": "openai",
        "RAG_EMBEDDING_MODEL": "ragd-embed", "RAG_OPENAI_API_BASE_URL": ragd.openai_base,
        "RAG_OPENAI_API_KEY": "none", "WEBUI_SECRET_KEY": "ragd-client-check", "ENABLE_VERSION_UPDATE_CHECK": "false",
        "ANONYMIZED_TELEMETRY": "false", "DO_NOT_TRACK": "true", "SCARF_NO_ANALYTICS": "true",
        "ENABLE_EVALUATION_ARENA_MODELS": "False", "AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST": "60",
    })
    return env


@contextmanager
def openwebui(ragd: RagdServer, workdir: Path) -> Iterator[str]:
    """Open WebUI from this virtualenv, on a free port, its data in ``workdir``; stopped on exit."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "openwebui.log"
    binary = str(Path(sys.executable).with_name("open-webui"))
    with log.open("wb") as sink:
        process = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env=openwebui_env(ragd, workdir / "data", port), stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", timeout_s=STARTUP_TIMEOUT_S, process=process, log=log)
        yield url
    finally:
        stop_process(process)


# ---------------------------------------------------------------- Open WebUI's own task templates

def task_templates() -> dict[str, str]:
    """The ``DEFAULT_*_GENERATION_PROMPT_TEMPLATE`` strings of the installed Open WebUI, read from its
    ``config.py`` without importing it (importing it opens its database)."""
    spec = importlib.util.find_spec("open_webui")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).with_name("config.py").read_text())
    templates = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and re.fullmatch(r"DEFAULT_\w+_GENERATION_PROMPT_TEMPLATE", node.targets[0].id)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            templates[node.targets[0].id] = node.value.value
    return templates


def render(template: str, chat: list[tuple[str, str]]) -> str:
    """A template as Open WebUI fills it (``utils/task.py``: messages as ``ROLE: text`` lines)."""
    messages = "\n".join(f"{role.upper()}: {text}" for role, text in chat)
    last_user = next(text for role, text in reversed(chat) if role == "user")
    text = re.sub(r"\{\{MESSAGES(?::(?:START|END|MIDDLETRUNCATE):\d+)?(?:\|\w+:\d+)?\}\}", messages, template)
    text = re.sub(r"\{\{prompt(?::\w+:\d+)?\}\}", last_user, text, flags=re.IGNORECASE)
    return text.replace("{{PROMPT}}", last_user).replace("{{TYPE}}", "General").replace("{{CURRENT_DATE}}",
                                                                                          time.strftime("%Y-%m-%d"))


EXPECTED_KEYS = {"TITLE": ("title", str), "TAGS": ("tags", list), "FOLLOW_UP": ("follow_ups", list),
                 "QUERY": ("queries", list), "AUTOCOMPLETE": ("text", str), "IMAGE_PROMPT": ("prompt", str)}


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


def check_task_templates(report: Report, ragd: RagdServer) -> None:
    chat = [("user", "What is reciprocal rank fusion?"),
            ("assistant", "It adds 1/(k + rank) over the lists [1].\n\nSources: [1] Reciprocal rank fusion")]
    templates = task_templates()
    report.check("Open WebUI's task templates were found", len(templates) >= 4, sorted(templates))
    for name, template in sorted(templates.items()):
        kind = name.removeprefix("DEFAULT_").removesuffix("_GENERATION_PROMPT_TEMPLATE")
        if kind == "MOA":  # sent only to merge several models' answers; answered by generation, slow on a busy CPU
            continue
        for model in ("ragd", "ragd-chat") if kind == "TITLE" else ("ragd",):
            try:
                status, headers, body = _post_json(ragd.openai_base + "/chat/completions", {
                    "model": model, "stream": False, "messages": [{"role": "user", "content": render(template, chat)}]})
            except OSError as exc:  # a timeout is this template's failure, not the whole check's
                report.fail(f"task template {kind} to {model}: answered", exc)
                continue
            content = (body.get("choices") or [{}])[0].get("message", {}).get("content", "")
            seen = f"{status} task={headers.get('x-ragd-task')} {content[:200]!r}"
            ok = status == 200 and headers.get("x-ragd-task") is not None and not body.get("citations")
            if kind in EXPECTED_KEYS:
                key, kind_type = EXPECTED_KEYS[kind]
                try:  # Open WebUI's own parsing: from the first "{" to the last "}"
                    parsed = json.loads(content[content.find("{"): content.rfind("}") + 1])
                    ok = ok and isinstance(parsed.get(key), kind_type)
                except ValueError:
                    ok = False
            report.check(f"task template {kind} to {model}: recognised, answered without sources", ok, seen)


# ---------------------------------------------------------------- the browser

def _dismiss_popups(page: Any) -> None:
    """Open WebUI greets a first visit with a changelog; close whatever modal is open."""
    for label in ("Okay, Let's Go!", "Close", "Dismiss"):
        button = page.get_by_role("button", name=label)
        if button.count() and button.first.is_visible():
            button.first.click()
            page.wait_for_timeout(300)
    page.keyboard.press("Escape")


def _response_text(page: Any) -> str:
    messages = page.locator("#response-content-container")
    return str(messages.last.inner_text()) if messages.count() else ""


def _new_chat(page: Any, base: str, tries: int = 3) -> None:
    """A new chat page with ragd selected (the app builds the page after the document loads, and lists
    the models from ragd: on a busy machine either can lag, so a page without a model is loaded again)."""
    for _ in range(tries):
        page.goto(base + "/", wait_until="domcontentloaded")
        page.locator("#chat-input").wait_for(state="visible")
        _dismiss_popups(page)
        try:
            page.locator('button[aria-label="Selected model: ragd"]').first.wait_for(state="visible", timeout=60_000)
            return
        except Exception:  # playwright's TimeoutError: no model selected yet
            continue
    raise RuntimeError("Open WebUI offered no ragd model to chat with (its model list from ragd failed)")


def _ask(page: Any, base: str, question: str) -> tuple[list[str], bool]:
    """Ask in a new chat; return the answer's text as sampled while it streamed, and whether it ended."""
    _new_chat(page, base)
    box = page.locator("#chat-input")
    box.click()
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    samples: list[str] = []
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    done = False
    while time.monotonic() < deadline:
        text = _response_text(page)
        if text and (not samples or text != samples[-1]):
            samples.append(text)
        # when generation ends the Stop button goes and the message's action bar appears
        stopping = page.get_by_role("button", name="Stop").count() > 0
        if samples and not stopping and page.get_by_role("button", name="Copy").count() > 0:
            done = True
            break
        page.wait_for_timeout(150)
    return samples, done


def _sources_visible(page: Any, expected_titles: tuple[str, ...]) -> tuple[bool, str]:
    toggle = page.get_by_role("button", name=re.compile(r"^Toggle \d+ sources?$"))
    if toggle.count() == 0:
        return False, "no sources control under the answer"
    label = str(toggle.last.get_attribute("aria-label"))
    toggle.last.click()
    page.wait_for_timeout(500)
    names = [str(b.get_attribute("aria-label")) for b in page.get_by_role(
        "button", name=re.compile(r"^View source: ")).all()]
    found = [t for t in expected_titles if any(t in n for n in names)]
    return bool(found), f"{label}; {names}"


def _chat_title(page: Any) -> str:
    return str(page.title())


def browse(report: Report, base: str, results: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        for language, question, titles in QUESTIONS:
            samples, done = _ask(page, base, question)
            report.facts[f"{language}_answer"] = samples[-1] if samples else ""
            report.facts[f"{language}_samples"] = len(samples)
            report.check(f"{language}: the answer completed in the page", done, samples[-1][:300] if samples else "")
            # an answer from the sources is streamed in pieces within milliseconds, faster than the page can
            # be sampled: whether it streamed is read from ragd's log (check_log); growth seen here is a fact
            report.facts[f"{language}_seen_growing"] = len(samples) >= 2 and len(samples[0]) < len(samples[-1])
            visible, seen = _sources_visible(page, titles)
            report.check(f"{language}: citations visible with their titles", visible, seen)
            shot = results / f"openwebui-{language}.png"
            page.screenshot(path=str(shot), full_page=True)
            report.facts[f"{language}_screenshot"] = str(shot)
            deadline = time.monotonic() + TASK_WAIT_S
            while time.monotonic() < deadline and _chat_title(page) in ("", "Open WebUI", "New Chat • Open WebUI"):
                page.wait_for_timeout(1000)
            report.facts[f"{language}_page_title"] = _chat_title(page)
        _check_model_selector(report, page, base, results)
        browser.close()


def _check_model_selector(report: Report, page: Any, base: str, results: Path) -> None:
    _new_chat(page, base)
    page.locator("button[id^=model-selector-][id$=-button]").first.click()  # Selector.svelte's trigger
    listbox = page.get_by_role("listbox", name="Available models")
    listbox.wait_for(state="visible")
    page.wait_for_timeout(500)
    page.screenshot(path=str(results / "openwebui-models.png"))
    listed = str(listbox.inner_text())
    report.check("the model selector offers ragd and ragd-chat, not ragd-embed",
                 "ragd-chat" in listed and "ragd-embed" not in listed, " | ".join(listed.split()))
    page.keyboard.press("Escape")


# ---------------------------------------------------------------- ragd's log

def check_log(report: Report, ragd: RagdServer) -> None:
    chats = [r for r in log_records(ragd.log_path) if r.get("route") == "/v1/chat/completions"]
    tasks = [r for r in chats if str(r.get("question", "")).lstrip().startswith("### Task:")]
    report.facts["task_requests"] = [{k: r.get(k) for k in ("task", "task_answer", "finish_reason", "status")}
                                     for r in tasks]
    refused = [r for r in chats if r.get("finish_reason") == "content_filter"]
    report.check("ragd refused no request (content_filter)", not refused,
                 [str(r.get("question", ""))[:120] for r in refused])
    kinds = {r.get("task") for r in tasks}
    report.check("Open WebUI's title, tags and follow-up requests reached ragd as tasks",
                 {"title", "tags", "follow_ups"} <= kinds, sorted(str(k) for k in kinds))
    unrecognised = [r for r in tasks if not r.get("task")]
    retrieved = [r for r in tasks if r.get("chunk_ids") or "retrieve" in (r.get("stages_ms") or {})]
    report.check("every task request was recognised", not unrecognised,
                 [str(r.get("question", ""))[:120] for r in unrecognised])
    report.check("no task request was retrieved for", not retrieved, [r.get("task") for r in retrieved])
    questions = [r for r in chats if r.get("chunk_ids")]
    report.check("the questions were retrieved for", len(questions) >= len(QUESTIONS), len(questions))
    for language, question, _ in QUESTIONS:
        asked = [r for r in questions if str(r.get("question", "")).strip() == question]
        pieces = [r.get("stream_pieces") for r in asked]
        report.check(f"{language}: the answer streamed to Open WebUI in pieces (ragd's log)",
                     bool(asked) and all(isinstance(n, int) and n >= 2 for n in pieces), pieces)
    answered = [r for r in questions if r.get("status") == 200 and r.get("finish_reason") in ("stop", "length")]
    report.check("ragd answered each question in full (no error, no deadline)", len(answered) == len(questions),
                 [(r.get("status"), r.get("finish_reason"), r.get("latency_ms")) for r in questions])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("RAGD_CLIENTS_RESULTS", "clients-results")))
    parser.add_argument("--openwebui-url", help="use this running Open WebUI instead of starting one")
    args = parser.parse_args(argv)
    ragd = RagdServer.from_env()
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    report = Report("openwebui")
    try:
        check_task_templates(report, ragd)
        if args.openwebui_url:
            browse(report, args.openwebui_url, results)
        else:
            with openwebui(ragd, results / "openwebui") as url:
                browse(report, url, results)
        time.sleep(2)  # the log writer flushes every 50 ms; the last task lines may still be on their way
        check_log(report, ragd)
    except Exception as exc:  # a crash is a failed check, reported with what had been seen
        report.fail("the check ran to its end", f"{type(exc).__name__}: {exc}")
    print(f"[openwebui] report: {report.save(results)}", flush=True)
    return report.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
