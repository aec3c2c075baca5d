"""Shadertoy's own pages, for when there is no API key: browse pages
``/results?query=&sort=newest&from=F&num=N`` and user pages, paged by path
(``/user/NAME/sort=popular&from=8&num=8``). A page embeds ``var gShaders=[…]`` with whole shaders,
or only ``var gShaderIDs=[…]``; those ids are then fetched with the site's batch
``POST /shadertoy`` (form ``s={"shaders":[…]}&nt=1&nl=1&np=1``), which answers a JSON array.

A page with neither variable is a parse error (the layout changed, or it is not a listing), never
an empty page. The "Results (N)" count is not trusted: the next page is asked for while pages
bring something new (see :attr:`Parsed.paging`); with ``since`` on a newest-first listing, a page
whose shaders are all older stops the paging too.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from bs4 import BeautifulSoup, SoupStrainer

from corpus.errors import InputFormatError
from harvest.formats.shadertoy import shadertoy_record
from harvest.frontier import NewRequest
from harvest.sources.base import SHADERTOY_SORTS, Parsed

RESULTS_PAGE = 12  # what the site itself shows per browse page
USER_PAGE = 8  # and per user page
BATCH = 12  # ids per batch POST, as the site's own script sends them
_ID = re.compile(r"[A-Za-z0-9]{1,16}")
# An assignment, not a use: the site's scripts also say ``gShaderIDs.length`` and ``gShaderIDs[i]``.
_ASSIGNED = re.compile(r"\b(gShaders|gShaderIDs)\s*=(?!=)\s*(?=\[)")
_SINCE = " since="
_FIX_HINT = "the raw page is kept: after a parser fix, run harvest reparse shadertoy-site"


class ShadertoySite:
    name = "shadertoy-site"
    site = "shadertoy"
    default_base_url = "https://www.shadertoy.com"
    needs_key = False
    options = {"query": None, "sort": SHADERTOY_SORTS, "user": None, "since": None}

    def start(self, base_url: str, options: dict | None = None) -> list[NewRequest]:
        options = options or {}
        user = options.get("user")
        sort = options.get("sort") or ("popular" if user else "newest")
        # ``since`` travels in the request's kind, so a resumed crawl and reparse see it too; it
        # only means something where the listing runs newest first.
        since = options.get("since")
        kind = f"page{_SINCE}{float(since)}" if since is not None and sort == "newest" else "page"
        if user:
            path = f"/user/{quote(user, safe='')}/{urlencode({'sort': sort, 'from': 0, 'num': USER_PAGE})}"
        else:
            query = options.get("query") or ""
            path = f"/results?{urlencode({'query': query, 'sort': sort, 'from': 0, 'num': RESULTS_PAGE})}"
        return [NewRequest(base_url + path, kind=kind, priority=1)]

    def parse(self, kind: str | None, url: str, body: bytes, base_url: str) -> Parsed:
        if kind == "batch" or (kind is None and urlsplit(url).path.rstrip("/") == "/shadertoy"):
            return self._batch_answer(url, body, base_url)
        name, shaders = _page_variable(url, body)
        if name == "gShaderIDs":
            ids = [i for i in shaders if isinstance(i, str) and _ID.fullmatch(i)]
            return Parsed(requests=batches(base_url, ids), paging=_next_page(url, kind, ids))
        records, unparsed = _records(url, shaders)
        since = float((kind or "").partition(_SINCE)[2] or "-inf")
        dates = [r.created_at.timestamp() for r in records if r.created_at is not None]
        older = since > float("-inf") and bool(dates) and max(dates) < since
        return Parsed(
            records=records,
            requests=batches(base_url, unparsed),
            paging=[] if older else _next_page(url, kind, shaders),
        )

    def _batch_answer(self, url: str, body: bytes, base_url: str) -> Parsed:
        try:
            shaders = json.loads(body)
        except ValueError as exc:
            raise InputFormatError(f"{url} did not return JSON ({exc.msg})", hint=_FIX_HINT) from exc
        if not isinstance(shaders, list):
            raise InputFormatError(f"{url} returned {type(shaders).__name__}, not a JSON array of shaders")
        records, unparsed = _records(url, shaders)
        if unparsed and len(shaders) == 1:
            raise InputFormatError(f"{url}: shader {unparsed[0]} in the batch answer does not parse")
        # Ask again one by one, so that one odd shader fails alone and names itself.
        return Parsed(records=records, requests=[b for i in unparsed for b in batches(base_url, [i])])


def batches(base_url: str, ids: list[str]) -> list[NewRequest]:
    """Batch POSTs for ``ids``, the form body byte for byte as the frontier fingerprints it."""
    requests = []
    for start in range(0, len(ids), BATCH):
        wanted = json.dumps({"shaders": ids[start : start + BATCH]}, separators=(",", ":"))
        body = f"s={quote(wanted, safe='')}&nt=1&nl=1&np=1"
        requests.append(NewRequest(f"{base_url}/shadertoy", method="POST", body=body, kind="batch"))
    return requests


def _page_variable(url: str, body: bytes) -> tuple[str, list]:
    """The page's ``gShaders`` (whole shaders) or ``gShaderIDs`` (ids only), by name."""
    soup = BeautifulSoup(body, "html.parser", parse_only=SoupStrainer("script"))
    for script in soup.find_all("script"):
        text = script.get_text()
        match = _ASSIGNED.search(text)
        if match is None:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(text, match.end())
        except ValueError as exc:
            raise InputFormatError(
                f"{url}: {match.group(1)} on the page is not a JSON array ({exc})", hint=_FIX_HINT
            ) from exc
        if not isinstance(value, list):
            raise InputFormatError(f"{url}: {match.group(1)} on the page is not a JSON array", hint=_FIX_HINT)
        return match.group(1), value
    raise InputFormatError(
        f"{url} has neither gShaders nor gShaderIDs: the site's layout may have changed, or this is "
        "not a results or user page",
        hint=_FIX_HINT,
    )


def _records(url: str, shaders: list[Any]) -> tuple[list, list[str]]:
    """Records of the shaders that parse, and the ids of those that do not. ``null`` entries are
    shaders the site no longer shows, not errors; an entry without an id means the format changed."""
    records, unparsed = [], []
    for shader in shaders:
        if shader is None:
            continue
        info = shader.get("info") if isinstance(shader, dict) else None
        shader_id = info.get("id") if isinstance(info, dict) else None
        if not isinstance(shader_id, str) or not _ID.fullmatch(shader_id):
            raise InputFormatError(f"{url} lists a shader without a valid info.id", hint=_FIX_HINT)
        try:
            records.append(shadertoy_record(shader, origin=url))
        except InputFormatError:
            unparsed.append(shader_id)
    return records, unparsed


def _next_page(url: str, kind: str | None, items: list) -> list[NewRequest]:
    """The same listing one page on (its ``from`` moved by its ``num``); none after an empty page."""
    if not items:
        return []
    parts = urlsplit(url)
    user_page = parts.path.startswith("/user/")
    paging = parts.path.rsplit("/", 1)[1] if user_page else parts.query
    params = {k: v[-1] for k, v in parse_qs(paging, keep_blank_values=True).items()}
    try:
        start, num = int(params.get("from", "0")), int(params.get("num", "0"))
    except ValueError:
        return []
    params.update({"from": str(start + max(num, len(items))), "num": str(num or len(items))})
    if user_page:
        following = f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/{urlencode(params)}"
    else:
        following = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"
    return [NewRequest(following, kind=kind or "page", priority=1)]
