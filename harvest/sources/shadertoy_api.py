"""Shadertoy's API: ``/api/v1/shaders`` (every id) or ``/api/v1/shaders/query/TERM`` (paged),
then ``/api/v1/shaders/ID`` for each. The key is added by the crawl at fetch time and never
stored; errors come as ``{"Error": …}`` with status 200.

Incremental crawls (``since``): the list endpoints return ids only, and a shader's date
(``info.date``, epoch seconds) is known only once it is fetched. So the all-ids list is fetched
again (conditionally) and only ids the frontier has not seen are fetched; a query sorted by
newest pages on while a page lists unseen ids and, with ``since``, until the shaders of a page
are all older than the date (the crawl fetches a next page only after the shaders before it).
Shaders older than ``since`` that were fetched anyway are stored: the request was made.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from corpus.errors import InputFormatError, UsageProblem
from harvest.formats.shadertoy import shadertoy_record
from harvest.frontier import NewRequest
from harvest.sources.base import SHADERTOY_SORTS, ErrorAnswer, Parsed

PAGE = 100


class ShadertoyApi:
    name = "shadertoy-api"
    site = "shadertoy"
    default_base_url = "https://www.shadertoy.com"
    needs_key = True
    options = {"query": None, "sort": SHADERTOY_SORTS, "since": None}

    def start(self, base_url: str, options: dict | None = None) -> list[NewRequest]:
        options = options or {}
        sort = options.get("sort") or "newest"
        if options.get("since") is not None and options.get("query") and sort != "newest":
            raise UsageProblem(
                f"--since needs a listing sorted by newest, not {sort!r}",
                hint="add --sort newest, or leave --since out",
            )
        if options.get("query"):
            return [self._query(base_url, options["query"], sort, 0)]
        return [NewRequest(f"{base_url}/api/v1/shaders", kind="list", priority=1)]

    def _query(self, base_url: str, term: str, sort: str, start: int) -> NewRequest:
        params = urlencode({"sort": sort, "from": start, "num": PAGE})
        return NewRequest(
            f"{base_url}/api/v1/shaders/query/{quote(term, safe='')}?{params}", kind="list", priority=1
        )

    def parse(self, kind: str | None, url: str, body: bytes, base_url: str) -> Parsed:
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise InputFormatError(f"{url} did not return JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InputFormatError(f"{url} returned JSON that is not an object")
        if "Error" in obj:
            raise ErrorAnswer(f"{url}: the API answered with an error: {obj['Error']}")
        if kind == "list":
            ids = [i for i in obj.get("Results") or [] if isinstance(i, str) and i.isalnum()]
            requests = [NewRequest(f"{base_url}/api/v1/shaders/{i}", kind="shader") for i in ids]
            parts = urlsplit(url)
            query = parse_qs(parts.query)
            paging = []
            if "/query/" in parts.path and len(ids) >= int(query.get("num", [PAGE])[0]):
                term = unquote(parts.path.rsplit("/", 1)[-1])
                start = int(query.get("from", ["0"])[0]) + len(ids)
                paging.append(self._query(base_url, term, query.get("sort", ["newest"])[0], start))
            return Parsed(requests=requests, paging=paging)
        return Parsed(records=[shadertoy_record(obj, origin=url)])
