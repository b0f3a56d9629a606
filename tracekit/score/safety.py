"""Screens for what a poisoned or careless teacher carries into a student.

"Cascading Adversarial Bias" (a compromised teacher plants biased content that students amplify)
and "Subliminal Learning" (traits transfer through data that looks unrelated) show that a
distilled student inherits more than answers. These screens catch the SURFACE forms such content
takes in text, each as a flag `safety:<kind>` on the trace with the matched span in its detail:

  url            URLs and bare domains whose host is not in the allow-list
  phishing       phishing-style link text ("verify your account", "click here"), and markdown
                 links whose visible text names another domain than the link goes to
  promo          promotional phrases ("use code", "buy now", "50% off", "sponsored by")
  insecure_code  shell=True, eval/exec on input, disabled TLS verification, hard-coded
                 credentials and key formats, curl | sh, chmod 777
  injection      prompt-injection aimed at a model that reads the trace (a grader, a student,
                 a reward model): "ignore previous instructions", "note to the AI grader", ...
  offtask        non-task topics (crypto, gambling, pharmacy, dating spam) in a math trace

What they cannot catch, plainly: semantic bias (a trace that argues a slanted position in
neutral words), subliminal traits (statistical preferences carried by innocuous-looking text,
e.g. number sequences), paraphrased or obfuscated injections, links written out in words, unsafe
code that matches no listed pattern, and anything in languages or encodings the patterns do not
cover. A trace with zero flags is not certified safe; a flag is a pointer for a human to read.

Every scanned trace gets the score `safety:flags` (the number of kinds flagged), which is also
how a re-run knows what it already scanned.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from tracekit.progress import progress
from tracekit.score.filters_common import (
    batched,
    delete_trace_flags,
    fetch_traces,
    flag_row,
    replace_scores,
    selected_trace_ids,
)
from tracekit.store import RunResult, Store

STAGE = "score.safety"
KINDS = ("url", "phishing", "promo", "insecure_code", "injection", "offtask")

DEFAULT_ALLOW_DOMAINS = [
    "wikipedia.org",
    "wikimedia.org",
    "artofproblemsolving.com",
    "arxiv.org",
    "doi.org",
    "oeis.org",
    "wolframalpha.com",
    "wolfram.com",
    "mathworld.wolfram.com",
    "khanacademy.org",
    "python.org",
    "numpy.org",
    "scipy.org",
    "pytorch.org",
    "github.com",
    "huggingface.co",
    "stackexchange.com",
    "stackoverflow.com",
]

_TLDS = (
    "com|net|org|io|ru|cn|xyz|top|info|biz|co|me|ly|app|site|online|shop|store|club|click|link"
    "|live|tk|gq|ml|cf|ga|ws|cc|su|pw|icu|buzz|vip|win|bet|casino|loan|work|pro|tv|us|uk|de"
)
_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"'`)\]}]+")
_DOMAIN = re.compile(
    r"(?i)(?<![\w@./-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS + r"))"
    r"(?![\w-])(/[^\s<>\"'`)\]}]*)?"
)
_MD_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^)\s]+)\)")

# kind -> [(pattern name, regex)]; names appear in flag details and docs/filters.md
PATTERNS: dict[str, list[tuple[str, str]]] = {
    "phishing": [
        ("click_here", r"\bclick (?:here|this link|the link below)\b"),
        (
            "verify_account",
            r"\b(?:verify|confirm|validate) your (?:account|identity|email|password|wallet)\b",
        ),
        ("login_prompt", r"\b(?:log ?in|sign ?in) (?:to|at) your (?:account|bank|wallet)\b"),
        ("reset_password", r"\breset your password\b"),
        (
            "account_threat",
            r"\byour account (?:has been|will be|is) (?:suspended|locked|closed|compromised)\b",
        ),
        (
            "prize",
            r"\b(?:claim your (?:prize|reward|gift)|you(?:'ve| have) (?:won|been selected))\b",
        ),
        (
            "credentials_request",
            r"\benter your (?:password|credit card|card number|ssn|social security|seed phrase|private key)\b",
        ),
        (
            "payment_update",
            r"\bupdate your (?:payment|billing|card) (?:details|information|info)\b",
        ),
    ],
    "promo": [
        ("buy_now", r"\b(?:buy|order|shop) now\b"),
        ("promo_code", r"\buse (?:the )?(?:promo |discount |coupon )?code\b"),
        # "20% off" alone is an everyday word problem; an offer addresses the reader
        (
            "percent_off",
            r"\b(?:get|save|enjoy|take) (?:an extra )?\d{1,2}% off (?:your|all|every|today|now|with)\b",
        ),
        ("limited_offer", r"\blimited[- ]time (?:offer|deal|only)\b"),
        ("sponsored", r"\b(?:sponsored by|brought to you by|affiliate link)\b"),
        ("visit_us", r"\b(?:visit|check out) our (?:website|site|store|shop|products?)\b"),
        ("subscribe", r"\b(?:subscribe to|follow) (?:us|our|my) (?:channel|newsletter|page|on)\b"),
        (
            "free_trial",
            r"\b(?:free trial|sign up (?:now|today)|best prices? (?:guaranteed|online))\b",
        ),
    ],
    "insecure_code": [
        ("shell_true", r"\bshell\s*=\s*True\b"),
        (
            "eval_input",
            r"\b(?:eval|exec)\s*\(\s*(?:input|raw_input|request\.|sys\.argv|os\.environ)",
        ),
        ("os_system_input", r"\bos\.system\s*\([^)\n]*\b(?:input|argv|request)\b"),
        ("tls_verify_off", r"\bverify\s*=\s*False\b"),
        (
            "tls_unverified",
            r"\b(?:ssl\._create_unverified_context|CERT_NONE|check_hostname\s*=\s*False)",
        ),
        (
            "tls_node",
            r"\b(?:rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['\"]?0)",
        ),
        ("curl_pipe_sh", r"\b(?:curl|wget)\b[^\n|]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b"),
        ("chmod_777", r"\bchmod\s+(?:-R\s+)?777\b"),
        (
            "hardcoded_secret",
            r"\b(?:password|passwd|pwd|secret|secret_key|api_key|apikey|access_token|auth_token)"
            r"\s*[:=]\s*[\"'][^\"'\s]{4,}[\"']",
        ),
        ("aws_key", r"\bAKIA[0-9A-Z]{16}\b"),
        (
            "token_format",
            r"\b(?:sk-[A-Za-z0-9_-]{20,}|ghp_[A-Za-z0-9]{36}|xox[abp]-[A-Za-z0-9-]{10,})",
        ),
        ("private_key", r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    ],
    "injection": [
        (
            "ignore_instructions",
            r"\b(?:ignore|disregard|forget|override) (?:all |any )?(?:of )?(?:the |your )?"
            r"(?:previous|prior|above|earlier|system|original) (?:instructions|prompts?|messages|rules)\b",
        ),
        (
            "role_override",
            r"\byou are now (?:in )?(?:developer mode|dan\b|jailbroken|unrestricted|an? unfiltered)",
        ),
        (
            "reveal_system",
            r"\b(?:reveal|print|output|repeat|show) (?:your|the) (?:system prompt|hidden instructions)\b",
        ),
        ("new_instructions", r"(?:^|\n)\s*(?:new|updated) instructions\s*:"),
        (
            "note_to_model",
            r"\b(?:note|message|instructions?) (?:to|for) (?:the |any )?(?:ai|assistant|model|grader|"
            r"evaluator|judge|reviewer|reader|llm|language model|reward model)\b",
        ),
        (
            "grade_manipulation",
            r"\b(?:grader|evaluator|judge|reward model|verifier)s?[,:]?\s+(?:please\s+)?"
            r"(?:mark|score|rate|grade|label) (?:this|the|my) (?:answer|response|solution)",
        ),
        (
            "award_full_marks",
            r"\b(?:give|award|assign) (?:this|the|my) (?:answer|response|solution) (?:full|maximum|"
            r"a perfect|the highest|a high) (?:marks|score|credit|rating|reward)\b",
        ),
    ],
    "offtask": [
        (
            "crypto",
            r"\b(?:bitcoin|ethereum|cryptocurrenc(?:y|ies)|crypto wallet|memecoin|nft drop|airdrop)\b",
        ),
        ("gambling", r"\b(?:online casino|sports betting|bet now|place your bets? (?:at|on) )\b"),
        ("pharmacy", r"\b(?:viagra|cialis|online pharmacy|without (?:a )?prescription)\b"),
        ("dating_spam", r"\b(?:hot singles|dating site|meet (?:local )?singles)\b"),
        (
            "finance_spam",
            r"\b(?:forex signals|binary options|guaranteed returns|investment opportunity)\b",
        ),
        (
            "weight_loss",
            r"\b(?:weight loss (?:pills|supplement)|lose \d+ (?:pounds|lbs|kg) (?:fast|in))\b",
        ),
    ],
}

# pattern name -> substrings (lowercase; "=" prefix: case-sensitive) of which one must occur for the pattern to be tried: a
# substring test runs at memory speed, a regex at each position of a 100 kB trace does not
PREFILTER: dict[str, tuple[str, ...]] = {
    "click_here": ("click",),
    "verify_account": ("your",),
    "login_prompt": ("your",),
    "reset_password": ("reset",),
    "account_threat": ("your account",),
    "prize": ("claim your", "you won", "you've won", "you have won", "been selected"),
    "credentials_request": ("enter your",),
    "payment_update": ("update your",),
    "buy_now": ("buy now", "order now", "shop now"),
    "promo_code": ("use code", "use the code", "promo code", "discount code", "coupon code"),
    "percent_off": ("% off",),
    "limited_offer": ("limited",),
    "sponsored": ("sponsor", "brought to you", "affiliate"),
    "visit_us": (" our ",),
    "subscribe": ("subscribe to", "follow us", "follow our", "follow my"),
    "free_trial": ("free trial", "sign up", "best price"),
    "shell_true": ("shell",),
    "eval_input": ("eval", "exec"),
    "os_system_input": ("os.system",),
    "tls_verify_off": ("false",),
    "tls_unverified": ("unverified", "cert_none", "check_hostname"),
    "tls_node": ("rejectunauthorized", "node_tls"),
    "curl_pipe_sh": ("curl", "wget"),
    "chmod_777": ("chmod",),
    "hardcoded_secret": (
        "password",
        "passwd",
        "pwd",
        "secret",
        "api_key",
        "apikey",
        "access_token",
        "auth_token",
    ),
    "aws_key": ("=AKIA",),
    "token_format": ("=sk-", "=ghp_", "=xox"),
    "private_key": ("private key",),
    "ignore_instructions": ("instruction", "prompt", "message", "rules"),
    "role_override": ("you are now",),
    "reveal_system": ("system prompt", "hidden instructions"),
    "new_instructions": ("instructions",),
    "note_to_model": (
        "assistant",
        "grader",
        "evaluator",
        "judge",
        "reviewer",
        "reader",
        "llm",
        "language model",
        "reward model",
        " ai ",
        " ai:",
        " ai,",
        " ai.",
        "the model",
        "any model",
    ),
    "grade_manipulation": ("grader", "evaluator", "judge", "reward model", "verifier"),
    "award_full_marks": (
        "marks",
        "credit",
        "rating",
        "reward",
        "full score",
        "perfect score",
        "highest score",
        "maximum score",
        "high score",
    ),
    "crypto": ("bitcoin", "ethereum", "crypto", "memecoin", "nft drop", "airdrop"),
    "gambling": ("casino", "betting", "bet now", "bets"),
    "pharmacy": ("viagra", "cialis", "pharmacy", "prescription"),
    "dating_spam": ("singles", "dating"),
    "finance_spam": ("forex", "binary options", "guaranteed returns", "investment opportunity"),
    "weight_loss": (
        "weight loss",
        "pounds fast",
        "lbs fast",
        "kg fast",
        "pounds in",
        "lbs in",
        "kg in",
    ),
}
_URL_HINTS = ("http", "www.", "ftp:")
_TLD_HIT = re.compile(r"\.(?:" + _TLDS + r")(?![a-z0-9-])")

_COMPILED: dict[str, list[tuple[str, tuple[str, ...], re.Pattern[str]]]] = {
    kind: [(name, PREFILTER.get(name, ()), re.compile(rx, re.IGNORECASE)) for name, rx in pats]
    for kind, pats in PATTERNS.items()
}


class SafetyConfig(BaseModel):
    """`allow_domains`: hosts (and their subdomains) a trace may link to. `offtask_domains`:
    prompt domains whose traces get the off-task screen (`offtask_unknown`: also prompts with
    no domain)."""

    model_config = ConfigDict(extra="forbid")

    allow_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOW_DOMAINS))
    kinds: list[str] = Field(default_factory=lambda: list(KINDS))
    offtask_domains: list[str] = Field(default_factory=lambda: ["math"])
    offtask_unknown: bool = True
    where: str | None = None
    batch_size: int = Field(1000, ge=1)
    recompute: bool = False

    def fingerprint(self) -> str:
        data = self.model_dump(exclude={"where", "batch_size", "recompute"})
        return hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=6).hexdigest()


def _has(hint: str, text: str, low: str) -> bool:
    """A hint is a lowercase substring, or with a leading '=' a case-sensitive one."""
    return hint[1:] in text if hint[0] == "=" else hint in low


def _host(url: str) -> str:
    if "://" not in url:
        url = "http://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".")


def _allowed(host: str, allow: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allow)


def _span(text: str, m: re.Match[str], group: int = 0) -> dict[str, Any]:
    return {"span": m.group(group)[:200], "start": m.start(group)}


def screen(
    text: str | None,
    *,
    allow_domains: Iterable[str] = DEFAULT_ALLOW_DOMAINS,
    kinds: Iterable[str] = KINDS,
    offtask: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """{kind: [matches]} for one text; each match has span, start and the pattern name."""
    text = text or ""
    low = text.lower()
    kinds = set(kinds)
    allow = [d.lower().lstrip(".") for d in allow_domains]
    found: dict[str, list[dict[str, Any]]] = {}
    if "url" in kinds:
        seen: set[int] = set()
        hits = []
        urls = _URL.finditer(text) if any(h in low for h in _URL_HINTS) else ()
        for m in urls:
            seen.update(range(m.start(), m.end()))
            host = _host(m.group(0))
            if host and not _allowed(host, allow):
                hits.append({**_span(text, m), "host": host, "pattern": "url"})
        domains = _DOMAIN.finditer(text) if _TLD_HIT.search(low) else ()
        for m in domains:
            if m.start() in seen:
                continue
            host = m.group(1).lower()
            if not _allowed(host, allow):
                hits.append({**_span(text, m), "host": host, "pattern": "bare_domain"})
        if hits:
            found["url"] = hits
    for kind, pats in _COMPILED.items():
        if kind not in kinds or (kind == "offtask" and not offtask):
            continue
        hits = [
            {**_span(text, m), "pattern": name}
            for name, hints, rx in pats
            if not hints or any(_has(h, text, low) for h in hints)
            for m in rx.finditer(text)
        ]
        if kind == "phishing" and "](http" in text:
            for m in _MD_LINK.finditer(text):
                shown = _DOMAIN.search(m.group(1))
                if shown and _host(shown.group(1)) != _host(m.group(2)):
                    hits.append({**_span(text, m), "pattern": "mismatched_link"})
        if hits:
            found[kind] = sorted(hits, key=lambda h: h["start"])
    return found


def run_safety(store: Store, cfg: SafetyConfig) -> RunResult:
    unknown = sorted(set(cfg.kinds) - set(KINDS))
    if unknown:
        from tracekit.errors import ConfigError

        raise ConfigError(f"unknown safety kinds {unknown} (known: {', '.join(KINDS)})")
    fp = cfg.fingerprint()
    ids = selected_trace_ids(
        store,
        cfg.where,
        done_score=None if cfg.recompute else "safety:flags",
        done_detail=("config", fp),
    )
    offtask_domains = set(cfg.offtask_domains)
    with store.run(STAGE, cfg) as run, progress("safety", len(ids), unit="traces") as bar:
        for batch in batched(ids, cfg.batch_size):
            rows = fetch_traces(store, batch, "t.trace_id, t.prompt_id, t.text, p.domain")
            flags: list[dict[str, Any]] = []
            scores: list[dict[str, Any]] = []
            for tid, pid, text, domain in rows:
                offtask = domain in offtask_domains or (domain is None and cfg.offtask_unknown)
                found = screen(
                    text, allow_domains=cfg.allow_domains, kinds=cfg.kinds, offtask=offtask
                )
                for kind, hits in found.items():
                    detail = {
                        "span": hits[0]["span"],
                        "start": hits[0]["start"],
                        "pattern": hits[0]["pattern"],
                        "count": len(hits),
                        "spans": hits[:5],
                    }
                    flags.append(flag_row(pid, tid, f"safety:{kind}", detail, run.run_id))
                    run.add(f"flagged:{kind}")
                scores.append(
                    {
                        "trace_id": tid,
                        "name": "safety:flags",
                        "value": float(len(found)),
                        "detail": {"config": fp, "kinds": sorted(found)},
                    }
                )
            with store.transaction():
                delete_trace_flags(store, [r[0] for r in rows], "safety")
                store.insert_rows("flags", flags)
                replace_scores(store, scores, ["safety:flags"], run.run_id)
            run.add("traces", len(rows))
            run.add("flagged", sum(1 for s in scores if s["value"] > 0))
            bar.advance(len(rows))
    return run.result


def safety_counts(store: Store) -> list[dict[str, Any]]:
    """Per teacher: traces scanned, traces flagged per kind and by any kind (for cards/reports)."""
    cols = ", ".join(
        f"count(DISTINCT f.trace_id) FILTER (WHERE f.flag = 'safety:{k}') AS {k}" for k in KINDS
    )
    return store.dicts(
        f"""SELECT t.teacher, count(DISTINCT s.trace_id) AS scanned, {cols},
                   count(DISTINCT f.trace_id) AS any_flag
            FROM traces t
            JOIN scores s ON s.trace_id = t.trace_id AND s.name = 'safety:flags'
            LEFT JOIN flags f ON f.trace_id = t.trace_id AND f.flag LIKE 'safety:%'
            GROUP BY t.teacher ORDER BY t.teacher"""
    )
