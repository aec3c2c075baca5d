"""De-duplication: normalised exact hashes, MinHash signatures, LSH near-duplicate groups."""

from __future__ import annotations

import random

import numpy as np
import pytest

from corpus.dedup import (
    DuplicatePair,
    MinHasher,
    estimate_jaccard,
    find_near_duplicates,
    lsh_parameters,
    normalise_code,
    normalised_sha256,
    strip_comments,
    tokenize,
)

# Written for these tests: a small ray-marched scene and an unrelated 2-D pattern.
SPHERE = """\
// a sphere over a checker floor
uniform vec3 iResolution;
uniform float iTime;

float sceneDistance(vec3 p) {
    float sphere = length(p - vec3(0.0, 1.0, 6.0)) - 1.0;
    float ground = p.y;
    return min(sphere, ground);
}

vec3 surfaceNormal(vec3 p) {
    vec2 e = vec2(0.001, 0.0);
    return normalize(vec3(
        sceneDistance(p + e.xyy) - sceneDistance(p - e.xyy),
        sceneDistance(p + e.yxy) - sceneDistance(p - e.yxy),
        sceneDistance(p + e.yyx) - sceneDistance(p - e.yyx)));
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = (fragCoord - 0.5 * iResolution.xy) / iResolution.y;
    vec3 origin = vec3(0.0, 1.0, 0.0);
    vec3 dir = normalize(vec3(uv, 1.0));
    float travelled = 0.0;
    for (int i = 0; i < 100; i++) {
        float d = sceneDistance(origin + dir * travelled);
        if (d < 0.001 || travelled > 50.0) break;
        travelled += d;
    }
    vec3 hit = origin + dir * travelled;
    vec3 light = normalize(vec3(sin(iTime), 2.0, -1.0));
    float diffuse = clamp(dot(surfaceNormal(hit), light), 0.0, 1.0);
    fragColor = vec4(vec3(diffuse), 1.0);
}
"""

STRIPES = """\
precision mediump float;
uniform float time;
uniform vec2 resolution;

vec3 palette(float t) {
    return 0.5 + 0.5 * cos(6.28318 * (vec3(1.0, 0.7, 0.4) * t + vec3(0.0, 0.15, 0.2)));
}

void main() {
    vec2 st = gl_FragCoord.xy / resolution;
    float bands = floor(st.x * 12.0 + sin(st.y * 3.0 + time) * 2.0);
    float glow = smoothstep(0.2, 0.0, abs(fract(st.y * 8.0 - time * 0.25) - 0.5));
    gl_FragColor = vec4(palette(bands / 12.0) + glow * 0.3, 1.0);
}
"""


def shingle_set(code: str, k: int = 5) -> set[tuple[str, ...]]:
    tokens = tokenize(code)
    if len(tokens) < k:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def true_jaccard(a: str, b: str, k: int = 5) -> float:
    sa, sb = shingle_set(a, k), shingle_set(b, k)
    return len(sa & sb) / len(sa | sb)


def long_program(rng: random.Random, lines: int = 60) -> list[str]:
    """A program as a list of distinct statements, so that edits change a known share of it."""
    names = ["p", "q", "uv", "col", "d", "h", "n", "t"]
    out = []
    for i in range(lines):
        a, b = rng.sample(names, 2)
        out.append(f"    float v{i} = {a}.x * {rng.uniform(0, 9):.3f} + sin({b}.y * {i}.0);")
    return out


def render(lines: list[str]) -> str:
    return "void main() {\n" + "\n".join(lines) + "\n}\n"


def edit_lines(lines: list[str], share: float, rng: random.Random) -> list[str]:
    edited = list(lines)
    for i in rng.sample(range(len(lines)), round(share * len(lines))):
        edited[i] = f"    vec3 w{i} = vec3({rng.uniform(0, 9):.4f}, w{i}.y, mix(a{i}, b{i}, 0.5));"
    return edited


class _UnderstatedLength:
    """An iterable whose length hint is too small, as a lazy query result's might be."""

    def __init__(self, items: list[tuple[int, str]], hint: int) -> None:
        self.items = items
        self.hint = hint

    def __iter__(self):
        return iter(self.items)

    def __length_hint__(self) -> int:
        return self.hint


# --- exact duplicates -----------------------------------------------------------------------


def test_comments_and_whitespace_changes_give_the_same_normalised_hash():
    reformatted = "/* header */\n" + SPHERE.replace("    ", "\t").replace(" + ", "+").replace("\n", "\n\n")
    reformatted = reformatted.replace("float ground = p.y;", "float ground = p.y; // the floor")
    assert reformatted != SPHERE
    assert normalised_sha256([reformatted]) == normalised_sha256([SPHERE])


def test_normalise_keeps_one_space_between_words_only():
    assert normalise_code("float  x = a +\n\tb;") == "float x=a+b;"
    assert normalise_code("a + b") == normalise_code("a+b")
    assert normalise_code("float x") != normalise_code("floatx")
    assert normalise_code("a/**/b") == "a b"


def test_normalised_hash_keeps_passes_apart():
    assert normalised_sha256(["float a;", "float b;"]) != normalised_sha256(["float a;float b;"])
    assert normalised_sha256(["a", "b"]) != normalised_sha256(["a b"])
    assert normalised_sha256(["a\x00b"]) != normalised_sha256(["a", "b"])
    with pytest.raises(TypeError):
        normalised_sha256("float a;")


def test_changed_constant_changes_the_exact_hash():
    changed = SPHERE.replace("- 1.0;", "- 1.25;")
    assert changed != SPHERE
    assert normalised_sha256([changed]) != normalised_sha256([SPHERE])


# --- comments and tokens --------------------------------------------------------------------


def test_strip_comments_removes_line_and_block_comments():
    code = "a // one\nb /* two\nlines */ c/**/d"
    assert strip_comments(code) == "a \nb   c d"


def test_unterminated_block_comment_runs_to_the_end():
    assert strip_comments("float a; /* never closed\nfloat b;") == "float a;  "
    assert tokenize("float a; /* never closed\nfloat b;") == ["float", "a", ";"]


def test_include_paths_are_not_comments():
    code = '#include "lib//noise.glsl" // the noise\nfloat n;'
    assert strip_comments(code) == '#include "lib//noise.glsl" \nfloat n;'
    assert tokenize(code) == ["#", "include", '"lib//noise.glsl"', "float", "n", ";"]


def test_tokens_keep_numbers_as_written_and_operators_whole():
    assert tokenize("x += 1.0e-3 * .5 + 1. + 0xFFu; y <<= 2; if (a && b || c != d) z++;") == [
        "x", "+=", "1.0e-3", "*", ".5", "+", "1.", "+", "0xFFu", ";",
        "y", "<<=", "2", ";",
        "if", "(", "a", "&&", "b", "||", "c", "!=", "d", ")", "z", "++", ";",
    ]  # fmt: skip
    assert tokenize("p.xy") == ["p", ".", "xy"]


def test_tokenize_equals_the_tokens_of_the_stripped_code():
    for code in (SPHERE, STRIPES, "a /* x */ b // y", "  \n// only a comment\n  ", "x /* open"):
        stripped = strip_comments(code)
        assert tokenize(code) == tokenize(stripped)
        assert "".join(tokenize(code)) == "".join(stripped.split())


def test_comment_only_code_has_no_tokens():
    assert tokenize("") == []
    assert tokenize("  // nothing\n/* here */ \n") == []


# --- signatures -----------------------------------------------------------------------------


def test_signatures_are_deterministic_for_a_seed():
    first = MinHasher(seed=3).signature(SPHERE)
    again = MinHasher(seed=3).signature(SPHERE)
    other = MinHasher(seed=4).signature(SPHERE)
    assert first.dtype == np.uint32 and first.shape == (128,)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bulk_signatures_equal_stacked_single_signatures():
    rng = random.Random(5)
    codes = [SPHERE, STRIPES, "", "a b", *(render(long_program(rng)) for _ in range(7))]
    hasher = MinHasher(num_perm=64, shingle_size=4)
    bulk = hasher.signatures(codes)
    assert bulk.shape == (len(codes), 64) and bulk.dtype == np.uint32
    assert np.array_equal(bulk, np.stack([hasher.signature(code) for code in codes]))
    small_chunks = np.concatenate([s for s, _ in hasher.iter_signatures(codes, chunk_size=3)])
    assert np.array_equal(bulk, small_chunks)
    assert hasher.signatures([]).shape == (0, 64)


def test_worker_processes_give_the_same_signatures():
    rng = random.Random(6)
    codes = [render(long_program(rng)) for _ in range(9)]
    hasher = MinHasher()
    in_workers = np.concatenate([s for s, _ in hasher.iter_signatures(codes, chunk_size=2, workers=2)])
    assert np.array_equal(in_workers, hasher.signatures(codes))


def test_comments_and_layout_do_not_change_the_signature():
    hasher = MinHasher()
    relaid = "/* v2 */\n" + SPHERE.replace("    ", "  ").replace("\n\n", "\n")
    assert np.array_equal(hasher.signature(relaid), hasher.signature(SPHERE))


def test_empty_and_short_code_get_signatures():
    hasher = MinHasher()
    empty = hasher.signature("")
    assert np.all(empty == np.iinfo(np.uint32).max)
    assert np.array_equal(hasher.signature("// just a comment"), empty)
    short = hasher.signature("void main")
    assert not np.array_equal(short, empty)
    assert np.array_equal(short, hasher.signature("void   main // again"))
    assert not np.array_equal(short, hasher.signature("main void"))


def test_estimated_jaccard_is_close_to_the_true_shingle_jaccard():
    rng = random.Random(11)
    hasher = MinHasher()
    base = long_program(rng)
    for share in (0.05, 0.2, 0.4, 0.7):
        a, b = render(base), render(edit_lines(base, share, rng))
        estimated = estimate_jaccard(hasher.signature(a), hasher.signature(b))
        assert abs(estimated - true_jaccard(a, b)) < 0.1, share
    unrelated = estimate_jaccard(hasher.signature(SPHERE), hasher.signature(STRIPES))
    assert abs(unrelated - true_jaccard(SPHERE, STRIPES)) < 0.1


def test_estimate_jaccard_rejects_mismatched_signatures():
    with pytest.raises(ValueError):
        estimate_jaccard(np.zeros(128, np.uint32), np.zeros(64, np.uint32))


def test_lsh_parameters_match_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold in (0.5, 0.7, 0.85, 0.95):
        assert lsh_parameters(threshold, 128) == lsh._optimal_param(threshold, 128, 0.5, 0.5)
    with pytest.raises(ValueError):
        lsh_parameters(0.0, 128)


# --- near duplicates ------------------------------------------------------------------------


def test_changed_constant_is_a_near_duplicate_of_the_original():
    changed = SPHERE.replace("- 1.0;", "- 1.25;")
    assert true_jaccard(SPHERE, changed) >= 0.85
    pairs = find_near_duplicates([(7, SPHERE), (3, changed)])
    assert len(pairs) == 1
    assert (pairs[0].duplicate, pairs[0].original) == (3, 7)
    assert pairs[0].similarity >= 0.85


def test_unrelated_shaders_are_not_near_duplicates():
    rng = random.Random(2)
    items = [(1, SPHERE), (2, STRIPES), *((10 + i, render(long_program(rng))) for i in range(5))]
    assert find_near_duplicates(items) == []


def test_duplicate_points_at_the_earliest_item():
    tweaked = SPHERE.replace("100", "120")
    recoloured = SPHERE.replace("2.0, -1.0", "3.0, -1.0")
    # Ids need not follow the order: position in the input decides which one is earliest.
    pairs = find_near_duplicates([(50, SPHERE), (40, STRIPES), (30, tweaked), (20, recoloured)])
    assert [(p.duplicate, p.original) for p in pairs] == [(30, 50), (20, 50)]


def test_chain_of_near_duplicates_points_at_the_first():
    rng = random.Random(21)
    a = long_program(rng, lines=80)
    b = edit_lines(a, 0.05, rng)
    c = list(b)
    for i in [i for i in range(80) if a[i] == b[i]][:4]:
        c[i] = f"    int k{i} = {i} * 3 - int(n.x);"
    codes = {"A": render(a), "B": render(b), "C": render(c)}
    assert true_jaccard(codes["A"], codes["B"]) >= 0.85
    assert true_jaccard(codes["B"], codes["C"]) >= 0.85
    assert true_jaccard(codes["A"], codes["C"]) < 0.85
    # 256 permutations keep the estimates about 2 standard deviations from the threshold.
    pairs = find_near_duplicates([(1, codes["A"]), (2, codes["B"]), (3, codes["C"])], num_perm=256)
    assert [(p.duplicate, p.original) for p in pairs] == [(2, 1), (3, 1)]
    assert pairs[1].similarity < 0.85


def test_threshold_is_configurable():
    rng = random.Random(8)
    base = long_program(rng)
    a, b = render(base), render(edit_lines(base, 0.14, rng))
    assert 0.65 <= true_jaccard(a, b) <= 0.75
    assert find_near_duplicates([(1, a), (2, b)], threshold=0.85) == []
    found = find_near_duplicates([(1, a), (2, b)], threshold=0.6)
    assert [(p.duplicate, p.original) for p in found] == [(2, 1)]
    with pytest.raises(ValueError):
        find_near_duplicates([(1, a)], threshold=1.5)


def test_empty_programs_are_never_near_duplicates():
    items = [(1, ""), (2, "   \n"), (3, "// nothing"), (4, "/* open"), (5, SPHERE), (6, "")]
    assert find_near_duplicates(items) == []
    assert find_near_duplicates([]) == []


def test_identical_short_programs_are_duplicates():
    pairs = find_near_duplicates([(1, "void main"), (2, "void main // same"), (3, "main void")])
    assert pairs == [DuplicatePair(duplicate=2, original=1, similarity=1.0)]


def test_many_exact_copies_all_point_at_the_first():
    items = [(i, SPHERE if i % 3 else STRIPES) for i in range(300)]
    pairs = find_near_duplicates(items)
    assert len(pairs) == 298
    assert all(p.original == (1 if p.duplicate % 3 else 0) for p in pairs)
    assert [p.duplicate for p in pairs] == sorted(p.duplicate for p in pairs)


def test_progress_reports_programs_signed():
    seen: list[int] = []
    rng = random.Random(4)
    items = [(i, render(long_program(rng, lines=5))) for i in range(2_500)]
    items[2_400] = (2_400, items[10][1])
    pairs = find_near_duplicates(items, progress=seen.append)
    assert seen == [1_000, 2_000, 2_500]
    assert (2_400, 10) in {(p.duplicate, p.original) for p in pairs}
    # A hint that runs out after the first chunk: the rest of the signatures overflow.
    assert find_near_duplicates(_UnderstatedLength(items, hint=1_500)) == pairs


def test_items_may_be_a_list_a_stream_or_understate_their_length():
    rng = random.Random(9)
    base = long_program(rng)
    items = [
        (i, render(edit_lines(base, 0.02 * (i % 3), rng) if i % 2 else long_program(rng))) for i in range(30)
    ]
    from_list = find_near_duplicates(items, num_perm=64)
    assert from_list
    assert find_near_duplicates(iter(items), num_perm=64) == from_list
    assert find_near_duplicates(_UnderstatedLength(items, hint=2), num_perm=64) == from_list


def test_random_mutations_are_found_and_distant_ones_are_not():
    rng = random.Random(1234)
    hasher = MinHasher()
    items: list[tuple[int, str]] = []
    expected: dict[int, int] = {}
    for _family in range(6):
        base = long_program(rng, lines=rng.randint(40, 90))
        origin = len(items)
        items.append((origin, render(base)))
        for _ in range(3):
            close = render(edit_lines(base, rng.choice((0.0, 0.02, 0.04)), rng))
            expected[len(items)] = origin
            items.append((len(items), close))
        far = render(edit_lines(base, 0.5, rng))
        assert true_jaccard(items[origin][1], far) < 0.5
        items.append((len(items), far))
    for dup, origin in expected.items():
        truth = true_jaccard(items[origin][1], items[dup][1])
        estimated = estimate_jaccard(hasher.signature(items[origin][1]), hasher.signature(items[dup][1]))
        assert truth >= 0.85 and abs(estimated - truth) < 0.1
    found = {p.duplicate: p.original for p in find_near_duplicates(items)}
    assert found == expected
