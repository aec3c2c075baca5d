"""Bad input must not cost more than linear time: a pathological 200 KB program is translated
in well under the time a quadratic step would take (seconds to minutes at this size)."""

from __future__ import annotations

import time

import pytest

from render.dialects.translate import declares_uniform, uniform_names
from render.dialects.zeroinit import zero_initialise_locals

SIZE = 200_000


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@pytest.mark.parametrize("check", [lambda c: declares_uniform(c, "iTime"), uniform_names])
def test_uniform_scans_are_linear_on_uniform_after_uniform_without_a_semicolon(check):
    code = "uniform " * (SIZE // 8)
    assert _seconds(lambda: check(code)) < 2.0


def test_uniform_scans_still_find_what_they_found():
    code = (
        "uniform float a; // uniform vec2 iTime;\nuniform highp vec2 b, c[2];\nuniform\nvec3 d;\nfloat iTime;"
    )
    assert uniform_names(code) == {"a": "float", "b": "vec2", "c": "vec2", "d": "vec3"}
    assert declares_uniform(code, "c") and declares_uniform(code, "d")
    assert not declares_uniform(code, "iTime")
    assert declares_uniform("uniform uniform float x;", "x") and not declares_uniform("uniform;x;", "x")
    assert declares_uniform("uniform float x", "x") and uniform_names("uniform float x") == {}


def test_zero_initialising_many_declarations_is_linear():
    body = "float a; " * (SIZE // 9)
    code = "void main() { " + body + "}\n"
    started = time.perf_counter()
    out = zero_initialise_locals(code)
    assert time.perf_counter() - started < 2.0
    assert out.count("float a = float(0);") == SIZE // 9


def test_zero_initialising_keeps_the_order_of_edits_at_one_place():
    code = "struct S { float f[2]; }; void main() { float a, b[2]; S s; }"
    assert zero_initialise_locals(code) == (
        "struct S { float f[2]; }; void main() { float a = float(0), b[2];"
        " for (int _ip_z0 = 0; _ip_z0 < 2; ++_ip_z0) { b[_ip_z0] = float(0); }"
        " S s; for (int _ip_z1 = 0; _ip_z1 < 2; ++_ip_z1) { s.f[_ip_z1] = float(0); } }"
    )
