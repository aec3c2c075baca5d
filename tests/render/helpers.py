"""What several render test modules share: self-written shaders and small helpers."""

from __future__ import annotations

#: A loop that never advances. llvmpipe ends every shader's loops after 65535 iterations, so the
#: body is made heavy (256 sines) to keep even llvmpipe busy for far longer than any deadline.
ENDLESS = """#define S(v) v = sin(v * 1.1 + 0.3);
#define S4(v) S(v) S(v) S(v) S(v)
#define S16(v) S4(v) S4(v) S4(v) S4(v)
#define S64(v) S16(v) S16(v) S16(v) S16(v)
#define S256(v) S64(v) S64(v) S64(v) S64(v)
void mainImage(out vec4 c, in vec2 f) {
    float v = f.x;
    int stepSize = int(iMouse.z > 1e9);  // 0: the loop never advances
    for (int i = 0; i < 16; i += stepSize) { S256(v) }
    c = vec4(v);
}"""
#: 2^18 terms after macro expansion: about 20 s and 1.4 GB to compile on llvmpipe.
EXPLODING = """#define A(x) (x + x * 1.0001)
#define B(x) A(A(x))
#define C(x) B(B(x))
#define D(x) C(C(x))
#define E(x) D(D(x))
#define G(x) B(E(x))
void mainImage(out vec4 c, in vec2 f) { float v = f.x; c = vec4(G(v)); }"""
NAN = "void mainImage(out vec4 c, in vec2 f) { c = vec4(sqrt(-1.0 - f.x)); }"
GOOD = "void mainImage(out vec4 c, in vec2 f) { c = vec4(f / iResolution.xy, 0.5 + 0.5 * sin(iTime), 1.0); }"
COUNTER_BUFFER = """void mainImage(out vec4 c, in vec2 f) {
    vec4 last = texelFetch(iChannel0, ivec2(0), 0);
    c = vec4(last.x + 1.0, float(iFrame), 0.0, 1.0);
}"""
SHOW_BUFFER = "void mainImage(out vec4 c, in vec2 f) { c = texelFetch(iChannel0, ivec2(0), 0); }"


def shadertoy_item(name: str, code: str) -> dict:
    """A one-pass Shadertoy work item, as corpus hands one to the sandbox."""
    return {
        "program": f"shadertoy:{name}",
        "dialect": "shadertoy",
        "code_sha256": name,
        "passes": [{"name": "Image", "type": "image", "code": code, "inputs": []}],
    }


def run_render(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``render ARGS`` in this process as the console script does: (exit code, stdout, stderr)."""
    import render.cli
    from corpus.cliutils import run_app

    code = run_app(render.cli.app, "render", args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def environment_task(engine, item: dict, params: dict, phase) -> dict:
    """A sandbox task that answers with the worker's values of ``params["keys"]`` (None: unset)."""
    import os

    return {"program": item["program"], "status": "ok", "env": {k: os.environ.get(k) for k in params["keys"]}}
