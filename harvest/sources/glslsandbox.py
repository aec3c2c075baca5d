"""GLSL Sandbox: gallery pages ``/?page=N`` list effects as ``/e#ID.VERSION``; each is then
fetched from ``/item/ID.VERSION`` (``{"code", "user", "parent"}``). The gallery is newest first;
the crawl pages on only while a page lists an effect it has not queued before, so paging stops at
an empty page or, on a re-crawl, at the first page of effects already known. Items carry no date,
so ``--since`` changes nothing here beyond that."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from corpus.errors import InputFormatError
from harvest.formats.glslsandbox import glslsandbox_item_record
from harvest.frontier import NewRequest
from harvest.sources.base import Parsed

_EFFECT_LINK = re.compile(r"""href=["']/e#(\d+\.\d+)["']""")


class GlslSandbox:
    name = "glslsandbox"
    site = "glslsandbox"
    default_base_url = "https://glslsandbox.com"
    needs_key = False
    options = {"since": None}  # newest-first gallery pages: --since stops paging

    def start(self, base_url: str, options: dict | None = None) -> list[NewRequest]:
        return [self._gallery(base_url, 0)]

    def _gallery(self, base_url: str, page: int) -> NewRequest:
        return NewRequest(f"{base_url}/?page={page}", kind="gallery", priority=1)

    def parse(self, kind: str | None, url: str, body: bytes, base_url: str) -> Parsed:
        if kind == "gallery":
            ids = list(dict.fromkeys(_EFFECT_LINK.findall(body.decode("utf-8", "replace"))))
            if not ids:
                if b"<html" not in body.lower()[:2048] and b"<!doctype" not in body.lower()[:2048]:
                    raise InputFormatError(
                        f"{url} is not a gallery page (no HTML); the site may have changed"
                    )
                return Parsed()
            page = int(parse_qs(urlsplit(url).query).get("page", ["0"])[0])
            items = [NewRequest(f"{base_url}/item/{i}", kind="item") for i in ids]
            return Parsed(requests=items, paging=[self._gallery(base_url, page + 1)])
        external_id = url.rstrip("/").rsplit("/", 1)[-1]
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise InputFormatError(f"{url} did not return JSON ({exc.msg})") from exc
        return Parsed(records=[glslsandbox_item_record(external_id, obj, origin=url)])
