"""Benchmark: near-duplicate detection over N synthetic shaders of about 2 KB each.

Programs are assembled from a few dozen self-written GLSL snippets (shapes, noises, patterns),
with identifiers drawn half from a pool of names real shaders share (``p``, ``uv``, ``col``) and
half invented, and every constant random. About 5 % of the programs are planted near
duplicates: an earlier program with a changed constant or two, a new comment, re-indentation
or one added line. The run prints the time of :func:`corpus.dedup.find_near_duplicates` end to
end against the 60 s target for 100,000 programs, peak RSS, planted duplicates recovered and
false positives, then times :class:`datasketch.MinHash` on 500 of the same programs (one
``hashlib`` call per shingle) as the baseline. The last line is JSON.

Example:
    .venv/bin/python benchmarks/bench_dedup.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import resource
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus.dedup import MinHasher, find_near_duplicates, tokenize  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_N = 100_000

# Each snippet defines one function ``float $fn(vec2 $p)``; ``$c1``... are random constants and
# every other ``$name`` a random identifier, fresh per program.
SNIPPETS = [
    "float $fn(vec2 $p) {\n    $p = fract($p * vec2($c1, $c2));\n    $p += dot($p, $p + $c3);\n"
    "    return fract($p.x * $p.y);\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $i = floor($p);\n    vec2 $f = fract($p);\n"
    "    vec2 $u = $f * $f * (3.0 - 2.0 * $f);\n"
    "    float $a = fract(sin(dot($i, vec2($c1, $c2))) * $c3);\n"
    "    float $b = fract(sin(dot($i + vec2(1.0, 0.0), vec2($c1, $c2))) * $c3);\n"
    "    float $c = fract(sin(dot($i + vec2(0.0, 1.0), vec2($c1, $c2))) * $c3);\n"
    "    float $d = fract(sin(dot($i + vec2(1.0, 1.0), vec2($c1, $c2))) * $c3);\n"
    "    return mix(mix($a, $b, $u.x), mix($c, $d, $u.x), $u.y);\n}\n",
    "float $fn(vec2 $p) {\n    float $s = 0.0;\n    float $w = $c1;\n"
    "    mat2 $m = mat2($c2, $c3, -$c3, $c2);\n    for (int $k = 0; $k < 5; $k++) {\n"
    "        $s += $w * sin($p.x) * cos($p.y);\n        $p = $m * $p * $c4;\n        $w *= $c5;\n"
    "    }\n    return $s;\n}\n",
    "float $fn(vec2 $p) {\n    return length($p - vec2($c1, $c2)) - $c3;\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $d = abs($p) - vec2($c1, $c2);\n"
    "    return length(max($d, 0.0)) + min(max($d.x, $d.y), 0.0);\n}\n",
    "float $fn(vec2 $p) {\n    float $r = length($p);\n"
    "    return sin($r * $c1 - iTime * $c2) * exp(-$r * $c3);\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $g = floor($p);\n    vec2 $f = fract($p);\n    float $best = 8.0;\n"
    "    for (int $y = -1; $y <= 1; $y++) {\n        for (int $x = -1; $x <= 1; $x++) {\n"
    "            vec2 $o = vec2(float($x), float($y));\n"
    "            vec2 $h = fract(sin(vec2(dot($g + $o, vec2($c1, $c2)),\n"
    "                                     dot($g + $o, vec2($c3, $c4)))) * $c5);\n"
    "            $best = min($best, length($o + $h - $f));\n        }\n    }\n    return $best;\n}\n",
    "float $fn(vec2 $p) {\n    float $a = atan($p.y, $p.x);\n"
    "    return smoothstep($c1, $c2, sin($a * $c3 + iTime));\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $q = floor($p * $c1);\n    return mod($q.x + $q.y, 2.0);\n}\n",
    "float $fn(vec2 $p) {\n    const vec2 $s = vec2(1.0, 1.7320508);\n"
    "    vec4 $h = floor(vec4($p, $p - vec2(0.5, 1.0)) / $s.xyxy) + 0.5;\n"
    "    vec4 $f = vec4($p - $h.xy * $s, $p - ($h.zw + 0.5) * $s);\n"
    "    vec2 $g = dot($f.xy, $f.xy) < dot($f.zw, $f.zw) ? $f.xy : $f.zw;\n"
    "    $g = abs($g);\n    return max(dot($g, $s * 0.5), $g.x) * $c1;\n}\n",
    "float $fn(vec2 $p) {\n    float $a = atan($p.y, $p.x) + iTime * $c1;\n"
    "    float $r = $c2 + $c3 * cos($a * 5.0);\n    return length($p) - $r;\n}\n",
    "float $fn(vec2 $p) {\n    float $d1 = length($p - vec2($c1, 0.0)) - $c2;\n"
    "    float $d2 = length($p + vec2($c1, 0.0)) - $c2;\n    float $k = $c3;\n"
    "    float $h = clamp(0.5 + 0.5 * ($d2 - $d1) / $k, 0.0, 1.0);\n"
    "    return mix($d2, $d1, $h) - $k * $h * (1.0 - $h);\n}\n",
    "float $fn(vec2 $p) {\n    for (int $i = 0; $i < 4; $i++) {\n"
    "        $p += $c1 * sin($p.yx * $c2 + iTime * $c3 + float($i));\n    }\n"
    "    return sin($p.x + $p.y);\n}\n",
    "float $fn(vec2 $p) {\n    float $r = length($p);\n    float $a = atan($p.y, $p.x);\n"
    "    return fract($a / 6.2831853 + log($r) * $c1 - iTime * $c2);\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $g = abs(fract($p * $c1) - 0.5);\n"
    "    return smoothstep($c2, 0.0, min($g.x, $g.y));\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $z = vec2(0.0);\n    float $n = 0.0;\n"
    "    for (int $i = 0; $i < 64; $i++) {\n"
    "        $z = vec2($z.x * $z.x - $z.y * $z.y, 2.0 * $z.x * $z.y) + $p * $c1 - vec2($c2, $c3);\n"
    "        if (dot($z, $z) > 4.0) break;\n        $n += 1.0;\n    }\n    return $n / 64.0;\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $c = vec2($c1, $c2) + 0.1 * vec2(cos(iTime), sin(iTime));\n"
    "    float $n = 0.0;\n    for (int $i = 0; $i < 48; $i++) {\n"
    "        $p = vec2($p.x * $p.x - $p.y * $p.y, 2.0 * $p.x * $p.y) + $c;\n"
    "        if (length($p) > 2.0) break;\n        $n += 1.0;\n    }\n    return $n / 48.0;\n}\n",
    "float $fn(vec2 $p) {\n    float $v = sin($p.x * $c1 + iTime);\n    $v += sin($p.y * $c2 - iTime);\n"
    "    $v += sin(($p.x + $p.y) * $c3);\n    $v += sin(length($p) * $c4 + iTime * $c5);\n"
    "    return $v * 0.25;\n}\n",
    "float $fn(vec2 $p) {\n    const float $k = 1.7320508;\n    $p.x = abs($p.x) - $c1;\n"
    "    $p.y = $p.y + $c1 / $k;\n"
    "    if ($p.x + $k * $p.y > 0.0) $p = vec2($p.x - $k * $p.y, -$k * $p.x - $p.y) / 2.0;\n"
    "    $p.x -= clamp($p.x, -2.0 * $c1, 0.0);\n    return -length($p) * sign($p.y);\n}\n",
    "float $fn(vec2 $p) {\n    return exp(-dot($p - vec2($c1, $c2), $p - vec2($c1, $c2)) * $c3);\n}\n",
    "float $fn(vec2 $p) {\n    float $a = atan($p.y, $p.x);\n    float $n = $c1;\n"
    "    float $seg = 6.2831853 / $n;\n    $a = mod($a, $seg) - 0.5 * $seg;\n"
    "    $p = length($p) * vec2(cos(abs($a)), sin(abs($a)));\n"
    "    return sin($p.x * $c2) * cos($p.y * $c3);\n}\n",
    "float $fn(vec2 $p) {\n    float $d1 = length($p - vec2($c1, $c2));\n"
    "    float $d2 = length($p + vec2($c2, $c1));\n"
    "    return 0.5 + 0.25 * (sin($d1 * $c3 - iTime) + sin($d2 * $c3 - iTime));\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $i = floor($p);\n    vec2 $f = fract($p) - 0.5;\n"
    "    if (fract(sin(dot($i, vec2($c1, $c2))) * $c3) > 0.5) $f.x = -$f.x;\n"
    "    float $d = abs(abs($f.x + $f.y) - 0.5);\n    $d = min($d, abs(abs($f.x - $f.y) - 0.5));\n"
    "    return smoothstep($c4, 0.0, $d);\n}\n",
    "float $fn(vec2 $p) {\n    vec2 $a = vec2($c1, $c2);\n    vec2 $b = vec2($c3, $c4);\n"
    "    vec2 $pa = $p - $a;\n    vec2 $ba = $b - $a;\n"
    "    float $h = clamp(dot($pa, $ba) / dot($ba, $ba), 0.0, 1.0);\n"
    "    return length($pa - $ba * $h) - $c5;\n}\n",
    "float $fn(vec2 $p) {\n    $p.x = abs($p.x);\n    $p.y -= $c1;\n"
    "    float $r = $c2 + $c3 * $p.y - sqrt(max($p.x, 0.0)) * $c4;\n    return length($p) - $r;\n}\n",
    "float $fn(vec2 $p) {\n    float $t = fract(iTime * $c1);\n    float $r = length($p) - $t * $c2;\n"
    "    return exp(-abs($r) * $c3) * (1.0 - $t);\n}\n",
    "float $fn(vec2 $p) {\n    float $z = $c1 / max(length($p), 0.001);\n"
    "    float $a = atan($p.y, $p.x) / 3.1415927;\n"
    "    return fract($z + iTime * $c2) * fract($a * $c3);\n}\n",
    "float $fn(vec2 $p) {\n    float $t = iTime * $c1;\n"
    "    mat2 $rot = mat2(cos($t), -sin($t), sin($t), cos($t));\n"
    "    $p = $rot * $p;\n    return step($c2, fract($p.x * $c3));\n}\n",
    "float $fn(vec2 $p) {\n    float $m = fract($p.x * $c1) + fract($p.y * $c2);\n"
    "    return abs(fract($m * $c3) - 0.5) * 2.0;\n}\n",
    "float $fn(vec2 $p) {\n    $p = abs($p);\n    $p = ($p.y > $p.x) ? $p.yx : $p.xy;\n"
    "    vec2 $q = $p - vec2($c1, $c2);\n    float $k = max($q.y, $q.x);\n"
    "    vec2 $w = ($k > 0.0) ? $q : vec2($c2 - $p.x, -$k);\n"
    "    return sign($k) * length(max($w, 0.0));\n}\n",
]

MAIN_HEAD = (
    "void mainImage(out vec4 fragColor, in vec2 fragCoord) {\n"
    "    vec2 $uv = (2.0 * fragCoord - iResolution.xy) / iResolution.y;\n"
    "    vec3 $col = vec3($c1, $c2, $c3);\n"
)
MAIN_STEP = (
    "    float $v = $fn($uv * $c1 + vec2($c2, $c3) * iTime);\n"
    "    $col = mix($col, vec3($c4, $c5, $c6), smoothstep($c7, $c8, $v));\n"
)
MAIN_TAIL = "    $col = pow(clamp($col, 0.0, 1.0), vec3(0.4545));\n    fragColor = vec4($col, 1.0);\n}\n"

COMMON_NAMES = (
    "p q uv st pos col color d dist r a b c h k n t s v w f g m o z id gv "
    "res val sum amp freq ang rad cell grid lum tint glow fade edge"
).split()
SYLLABLES = "ka lo mi ze tu ra no vi sha pe do gu li fo ne xa bi ro".split()
WORDS = "plasma wobble nebula ripple lattice ember drift vortex prism lumen tide bloom".split()


class _Bindings(dict):
    """Placeholder values made on first use: constants for ``$cN``, identifiers for the rest."""

    def __init__(self, rng: random.Random, fn: str | None = None) -> None:
        super().__init__()
        self.rng = rng
        self.used: set[str] = set()
        if fn is not None:
            self["fn"] = fn

    def __missing__(self, key: str) -> str:
        rng = self.rng
        if re.fullmatch(r"c\d+", key):
            value = f"{rng.uniform(0.05, 9.0):.{rng.choice((1, 2, 3))}f}"
        else:
            value = ""
            while not value or value in self.used:
                if rng.random() < 0.5:
                    value = rng.choice(COMMON_NAMES)
                else:
                    value = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3)))
                value = value if value not in self.used else value + str(rng.randint(0, 99))
            self.used.add(value)
        self[key] = value
        return value


def make_program(index: int, seed: int) -> str:
    """One synthetic shader of about 2 KB, fixed by ``(seed, index)``."""
    rng = random.Random(seed * 1_000_003 + index)
    target = rng.randint(1_600, 2_600)
    comment = f"// {rng.choice(WORDS)} {rng.choice(WORDS)} #{index}\n"
    parts = [comment, "precision highp float;\n\n"]
    functions: list[str] = []
    length = sum(map(len, parts)) + 400
    used_names: set[str] = set()
    while length < target:
        name = "".join(rng.choices(SYLLABLES, k=3)) + rng.choice(("", "Fn", "2", "Shape"))
        if name in used_names:
            continue
        used_names.add(name)
        snippet = string.Template(rng.choice(SNIPPETS)).substitute(_Bindings(rng, fn=name))
        parts.append(snippet + "\n")
        functions.append(name)
        length += len(snippet) + 150
    main = _Bindings(rng)
    body = [string.Template(MAIN_HEAD).substitute(main)]
    for name in functions:
        step = _Bindings(rng, fn=name)
        step["uv"], step["col"] = main["uv"], main["col"]
        body.append(string.Template(MAIN_STEP).substitute(step))
    body.append(string.Template(MAIN_TAIL).substitute(main))
    return "".join(parts + body)


_NUMBER = re.compile(r"\b\d+\.\d+\b")


_LOCAL = re.compile(r"\b(?:float|vec2|vec3|mat2|int) ([a-z]\w*)")


def mutate(code: str, rng: random.Random) -> str:
    """A near copy: one to five of a new constant, a comment, re-indentation, an added line or a
    renamed local variable (the last moves the copy furthest, sometimes below the threshold)."""
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(("constant", "constant", "comment", "indent", "line", "rename"))
        if kind == "rename":
            names = sorted(set(_LOCAL.findall(code)))
            if names:
                old = rng.choice(names)
                code = re.sub(rf"\b{old}\b", old + "_" + rng.choice(SYLLABLES), code)
            continue
        if kind == "constant":
            numbers = list(_NUMBER.finditer(code))
            if numbers:
                m = rng.choice(numbers)
                code = code[: m.start()] + f"{rng.uniform(0.05, 9.0):.2f}" + code[m.end() :]
        elif kind == "comment":
            code = f"/* forked from an earlier shader, {rng.choice(WORDS)} edition */\n" + code
        elif kind == "indent":
            code = code.replace("    ", "\t")
        else:
            cut = code.rfind("    fragColor")
            if cut > 0:
                code = code[:cut] + f"    fragColor.rgb *= {rng.uniform(0.8, 1.2):.2f};\n" + code[cut:]
    return code


def make_corpus(n: int, seed: int, duplicate_share: float) -> tuple[list[str], dict[int, int]]:
    """``n`` programs, and for each planted near duplicate the position of its expected original."""
    rng = random.Random(seed)
    codes: list[str] = []
    expected: dict[int, int] = {}
    for index in range(n):
        if index > 0 and rng.random() < duplicate_share:
            source = rng.randrange(index)
            codes.append(mutate(codes[source], rng))
            expected[index] = expected.get(source, source)
        else:
            codes.append(make_program(index, seed))
    return codes, expected


def shingle_set(code: str, k: int) -> set[tuple[str, ...]]:
    tokens = tokenize(code)
    if len(tokens) < k:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def true_jaccard(a: str, b: str, k: int) -> float:
    sa, sb = shingle_set(a, k), shingle_set(b, k)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def time_datasketch(codes: list[str], num_perm: int, k: int) -> float:
    """Seconds per program for datasketch.MinHash over the same shingles (one sha1 per shingle)."""
    from datasketch import MinHash

    start = time.perf_counter()
    for code in codes:
        tokens = tokenize(code)
        shingles = [" ".join(tokens[i : i + k]).encode() for i in range(max(1, len(tokens) - k + 1))]
        minhash = MinHash(num_perm=num_perm, seed=1)
        minhash.update_batch(shingles)
    return (time.perf_counter() - start) / len(codes)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak RSS of this process; worker processes (``--workers``) are not included."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=TARGET_N, help="programs to generate (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=0.85)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--shingle-size", type=int, default=5)
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of planted near duplicates")
    parser.add_argument("--baseline", type=int, default=500, help="programs timed with datasketch.MinHash")
    parser.add_argument("--workers", type=int, default=1, help="processes that sign chunks (default 1)")
    args = parser.parse_args()

    start = time.perf_counter()
    codes, expected = make_corpus(args.n, args.seed, args.duplicates)
    generate_s = time.perf_counter() - start
    mean_kb = sum(map(len, codes)) / len(codes) / 1024
    print(
        f"generated {args.n:,} programs (mean {mean_kb:.2f} KB, {len(expected):,} planted near duplicates) "
        f"in {generate_s:.1f} s",
        flush=True,
    )

    items = list(enumerate(codes))  # a list tells its length: signatures are written in place
    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    start = time.perf_counter()
    pairs = find_near_duplicates(
        items,
        threshold=args.threshold,
        num_perm=args.num_perm,
        shingle_size=args.shingle_size,
        workers=args.workers,
    )
    dedup_s = time.perf_counter() - start
    peak_after = peak_rss_mb()

    found = {pair.duplicate: pair.original for pair in pairs}
    recovered = sum(found.get(dup) == original for dup, original in expected.items())
    planted_jaccard = {
        dup: true_jaccard(codes[dup], codes[orig], args.shingle_size) for dup, orig in expected.items()
    }
    findable = [dup for dup, j in planted_jaccard.items() if j >= args.threshold]
    recovered_findable = sum(found.get(dup) == expected[dup] for dup in findable)
    recall_by_band = {}
    for low, high in ((0.0, args.threshold), (args.threshold, 0.9), (0.9, 0.95), (0.95, 1.01)):
        band = [dup for dup, j in planted_jaccard.items() if low <= j < high]
        hits = sum(found.get(dup) == expected[dup] for dup in band)
        recall_by_band[f"{low:.2f}-{min(high, 1.0):.2f}"] = [hits, len(band)]
    unexpected = [pair for pair in pairs if expected.get(pair.duplicate) != pair.original]
    false_positives = [
        pair
        for pair in unexpected
        if true_jaccard(codes[pair.duplicate], codes[pair.original], args.shingle_size) < args.threshold
    ]

    sample = codes[: args.baseline]
    baseline_s = time_datasketch(sample, args.num_perm, args.shingle_size)
    hasher = MinHasher(num_perm=args.num_perm, shingle_size=args.shingle_size)
    start = time.perf_counter()
    hasher.signatures(sample)
    bulk_s = (time.perf_counter() - start) / len(sample)
    end_to_end_per_program = dedup_s / args.n

    target_s = TARGET_SECONDS * args.n / TARGET_N
    print(
        f"find_near_duplicates ({args.workers} worker{'s' if args.workers > 1 else ''}): {dedup_s:.1f} s "
        f"for {args.n:,} programs = {args.n / dedup_s:,.0f} programs/s "
        f"(target {target_s:.0f} s: {'met' if dedup_s <= target_s else 'MISSED'})"
    )
    print(
        f"RSS before {rss_before:.0f} MB (the corpus itself), peak {peak_after:.0f} MB "
        f"(+{peak_after - max(peak_before, rss_before):.0f} MB during de-duplication)"
    )
    print(
        f"planted near duplicates: {len(expected):,}; "
        f"recovered {recovered:,} ({recovered / max(1, len(expected)):.1%}); "
        f"of the {len(findable):,} with true shingle Jaccard >= {args.threshold}: "
        f"{recovered_findable:,} ({recovered_findable / max(1, len(findable)):.1%})"
    )
    print(
        "planted recovered by true shingle Jaccard to the original (found/planted): "
        + ", ".join(f"{band}: {hits}/{total}" for band, (hits, total) in recall_by_band.items())
    )
    print(
        f"reported pairs {len(pairs):,}; not planted {len(unexpected):,}; "
        f"false positives (true Jaccard < {args.threshold}) {len(false_positives):,}"
    )
    print(
        f"datasketch.MinHash: {baseline_s * 1e3:.2f} ms/program; "
        f"bulk MinHasher: {bulk_s * 1e3:.3f} ms/program "
        f"(x{baseline_s / bulk_s:.0f}); whole pipeline: {end_to_end_per_program * 1e3:.3f} ms/program "
        f"(x{baseline_s / end_to_end_per_program:.0f}) on {args.baseline} programs"
    )
    print(
        json.dumps(
            {
                "benchmark": "dedup.find_near_duplicates",
                "python": platform.python_version(),
                "n": args.n,
                "workers": args.workers,
                "mean_program_kb": round(mean_kb, 3),
                "threshold": args.threshold,
                "num_perm": args.num_perm,
                "shingle_size": args.shingle_size,
                "seconds": round(dedup_s, 2),
                "target_seconds": target_s,
                "target_met": dedup_s <= target_s,
                "programs_per_second": round(args.n / dedup_s),
                "rss_before_mb": round(rss_before),
                "peak_rss_mb": round(peak_after),
                "planted": len(expected),
                "recovered": recovered,
                "recall": round(recovered / max(1, len(expected)), 4),
                "planted_findable": len(findable),
                "recall_findable": round(recovered_findable / max(1, len(findable)), 4),
                "recall_by_true_jaccard": recall_by_band,
                "reported_pairs": len(pairs),
                "not_planted": len(unexpected),
                "false_positives": len(false_positives),
                "baseline_datasketch_ms_per_program": round(baseline_s * 1e3, 3),
                "bulk_signature_ms_per_program": round(bulk_s * 1e3, 4),
                "speedup_signatures": round(baseline_s / bulk_s, 1),
                "speedup_end_to_end": round(baseline_s / end_to_end_per_program, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
