"""The one GLSL comment lexer: what is a comment, and linear time on any input."""

from __future__ import annotations

import time

import pytest

from corpus.glsl import comment_texts, strip_comments


@pytest.mark.parametrize(
    ("code", "stripped"),
    [
        ("a // one\nb", "a \nb"),
        ("a /* two\nlines */ b", "a   b"),
        ("a/**/b", "a b"),
        ("a /* /* nested */ b */ c", "a   b */ c"),  # block comments do not nest
        ("a /* // inside */ b", "a   b"),  # a // inside a block comment is part of it
        ("a // /* inside\nb */ c", "a \nb */ c"),  # a /* inside a line comment is part of it
        ("float a; /* never closed\nfloat b;", "float a;  "),
        ("x = 1; //", "x = 1; "),
        ("a /*/ b */ c", "a   c"),  # "/*/" opens, it does not close
        ("a */ b", "a */ b"),  # a stray */ is code
        ('#include "lib//noise.glsl" // the noise\nn', '#include "lib//noise.glsl" \nn'),
        ('#include "lib/*x*/.glsl"', '#include "lib/*x*/.glsl"'),
        ('"unclosed // c\nd', '"unclosed \nd'),  # a quote without its pair on the line is code
        ("no comment at all", "no comment at all"),
    ],
)
def test_what_is_a_comment_and_what_is_left(code: str, stripped: str) -> None:
    assert strip_comments(code) == stripped


def test_comment_texts_are_the_comments_with_their_markers_in_order() -> None:
    code = '#include "a//b" /* one */ x // two\n/* three'
    assert comment_texts(code) == ["/* one */", "// two", "/* three"]
    assert comment_texts("void main(){}") == []


@pytest.mark.parametrize(
    "hostile",
    [
        "/*a" * 70_000,  # every /* unterminated: once quadratic (0.7 s for 24 KB)
        "//" * 100_000,
        "/" * 200_000,
        "/*/" * 70_000,
        '"/*' * 70_000,
        '"' * 200_000,
        "a\n/*" * 50_000,
        "*/" * 100_000,
    ],
)
def test_strip_and_comment_texts_are_linear_on_hostile_input(hostile: str) -> None:
    assert len(hostile) >= 200_000
    for lexer in (strip_comments, comment_texts):
        start = time.perf_counter()
        lexer(hostile)
        # linear: a few ms; the quadratic lexer took 0.7 s for 24 KB, so ~50 s for these 200 KB.
        # 1 s leaves room for a loaded machine and still tells the two apart fifty times over.
        assert time.perf_counter() - start < 1.0, lexer.__name__
