"""Vetting: which validated programs are fit to train on, by a policy with a hash.

The policy is a handful of thresholds on what validation stored (status, timings, image
statistics). Its verdicts are stored in the catalogue with the policy's hash, so a changed policy
changes nothing until ``render vet`` runs again, and a snapshot records which policy vetted it.

The default policy, and what each threshold is for (a TOML file overrides any of them; write the
defaults out with ``render vet --write-policy FILE``):

- ``statuses = ["ok"]``: only programs that rendered a usable picture;
- ``size = 256``: the resolution whose profile the timing limits apply to (256 x 256);
- ``max_frame_ms_median = 60.0``: at most 60 ms a frame at that size on the validating machine;
- ``max_first_frame_ms = 2500.0``: llvmpipe compiles to machine code at the first draw; a program
  that needs longer than this stalls on-the-fly training whenever a worker meets it;

Both timing bounds are for ``render validate``'s workers, which JIT without LLVM's optimisation
passes (``GALLIVM_PERF=nopt``, :data:`render.validate.VALIDATION_WORKER_ENV`): first draws take
about half as long as with the optimised JIT and frames about a fifth longer. Until issue 11 the
workers used the optimised JIT and the bounds were 50 ms and 5000 ms; 60 and 2500 keep about the
same programs in (a random 300 of the real corpus: 134 vetted before, 138 now, 8 verdicts differ,
where the same code validated twice on that busy machine differs in 3 %: benchmarks/RESULTS.md).
- ``max_nonfinite_share = 0.05``: at most 5 % NaN/inf pixels (shown black);
- ``min_entropy = 0.5``: entropy of the colours in bits (16 levels a channel); below it the
  picture is near-constant (a two-colour pattern has 1 bit);
- ``min_coverage = 0.02``: at least 2 % of the canvas differs from the background colour;
- ``min_temporal_change = 0.0005``: mean change between frames 1/30 s apart (0..1); below it the
  program is a still picture, which gives one image, not a distribution (measured at 64², the
  size validation draws in pairs since issue 11.2; the 256² profile reports it and says so);
- ``allow_standins = true``: programs whose textures, sound or keyboard were replaced by
  procedural stand-ins are kept (set false to keep only self-contained programs).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from corpus.errors import UsageProblem

#: What each check's name means in a summary line ("rejected by <name>" said little).
CHECK_MEANINGS = {
    "validated": "no result on this renderer yet",
    "status": "a status the policy does not accept",
    "profile": "no profile at the policy's size",
    "frame_ms": "frames too slow",
    "first_frame_ms": "first frame too slow: compile and JIT",
    "nonfinite": "too many non-finite pixels",
    "entropy": "too few colours",
    "coverage": "too little of the canvas drawn",
    "temporal_change": "too little change over time",
    "standins": "inputs replaced by stand-ins",
}


@dataclass(frozen=True)
class Policy:
    statuses: tuple[str, ...] = ("ok",)
    size: int = 256
    max_frame_ms_median: float = 60.0
    max_first_frame_ms: float = 2500.0
    max_nonfinite_share: float = 0.05
    min_entropy: float = 0.5
    min_coverage: float = 0.02
    min_temporal_change: float = 0.0005
    allow_standins: bool = True

    @property
    def hash(self) -> str:
        """sha256 of the policy's canonical JSON: equal thresholds, equal hash."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_toml(self) -> str:
        lines = ["# imageprograms vetting policy (see `render vet --help`); every key is optional"]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                text = "[" + ", ".join(json.dumps(v) for v in value) + "]"
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = json.dumps(value)
            lines.append(f"{f.name} = {text}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        """The default policy, with the keys of a TOML file at ``path`` overriding it."""
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UsageProblem(
                f"no policy file {path}", hint="write the default one with: render vet --write-policy FILE"
            ) from exc
        except IsADirectoryError:
            raise UsageProblem(
                f"--policy {path} is a folder",
                hint="give --policy a TOML file (render vet --write-policy FILE)",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(
                f"--policy {path} cannot be read: {exc}", hint="give --policy a TOML file"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageProblem(f"{path} is not valid TOML: {exc}") from exc
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UsageProblem(
                f"{path}: unknown policy key(s) {', '.join(unknown)}", hint=f"known keys: {', '.join(known)}"
            )
        values = {key: _typed_value(path, key, value, getattr(cls(), key)) for key, value in data.items()}
        return cls(**values)


#: How a policy key's type is named in an error, by the type of its default.
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", tuple: "a list of strings"}


def _typed_value(path: str | Path, key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``, checked as TOML gives it (never coerced: ``"no"``
    is not false, ``32.5`` is not a size, ``"ok"`` is not a list of statuses)."""
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if type(value) is kind:  # bool is an int to Python, never to a policy
        return value
    example = f"{key} = " + (
        "[" + ", ".join(json.dumps(v) for v in default) + "]" if kind is tuple else json.dumps(default)
    )
    raise UsageProblem(
        f"{path}: {key} must be {_TYPE_WORDS[kind]}, not {json.dumps(value, default=str)}",
        hint=f"for example: {example} (render vet --write-policy FILE writes every key)",
    )


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Verdict:
    program: str
    vetted: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why it is out (the failed checks), or why it is in (all checks) when vetted."""
        failed = [c.detail for c in self.checks if not c.passed]
        return failed if failed else [c.detail for c in self.checks]

    def to_json(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "vetted": self.vetted,
            "checks": [asdict(c) for c in self.checks],
        }


def judge(policy: Policy, entry: dict[str, Any]) -> Verdict:
    """The policy's verdict on one program (an entry of :func:`corpus.validations.vetting_inputs`)."""
    checks: list[Check] = []
    validation = entry.get("validation")
    if validation is None:
        checks.append(Check("validated", False, "not validated on this renderer yet: run render validate"))
        return Verdict(entry["program"], False, checks)
    status = validation["status"]
    checks.append(Check("status", status in policy.statuses, f"status {status}"))
    if status not in policy.statuses:
        return Verdict(entry["program"], False, checks)
    profiles = {(p["width"], p["height"]): p for p in entry.get("profiles") or []}
    profile = profiles.get((policy.size, policy.size))
    if profile is None:
        checks.append(
            Check("profile", False, f"no profile at {policy.size}x{policy.size}: validate with that size")
        )
        return Verdict(entry["program"], False, checks)
    first = validation.get("first_frame_ms")

    def limit(name: str, value: float | None, bound: float, upper: bool, what: str, unit: str = "") -> None:
        if value is None:
            checks.append(Check(name, False, f"{what} unknown"))
            return
        ok = value <= bound if upper else value >= bound
        sign = ("<=" if ok else ">") if upper else (">=" if ok else "<")
        checks.append(Check(name, ok, f"{what} {value:.4g}{unit} {sign} {bound:g}{unit}"))

    size = f"{policy.size}x{policy.size}"
    lower = (profile.get("stats") or {}).get("lower_bound_from")
    if lower and profile["frame_ms_median"] <= policy.max_frame_ms_median:
        # not drawn at this size: only a lower bound is known, and it is within this policy's bound
        checks.append(
            Check(
                "frame_ms",
                False,
                f"frame time at {size} unknown: at least {profile['frame_ms_median']:.4g} ms (not drawn, "
                f"{lower[0]}x{lower[1]} was over the validation's frame-time cap); "
                "render validate --again --policy … measures it",
            )
        )
    else:
        limit(
            "frame_ms",
            profile["frame_ms_median"],
            policy.max_frame_ms_median,
            True,
            f"frame time at {size}",
            " ms",
        )
    limit("first_frame_ms", first, policy.max_first_frame_ms, True, "first frame (compile + JIT)", " ms")
    limit("nonfinite", profile["nonfinite_share"], policy.max_nonfinite_share, True, "non-finite share")
    limit("entropy", profile["entropy"], policy.min_entropy, False, "entropy", " bits")
    limit("coverage", profile["coverage"], policy.min_coverage, False, "canvas coverage")
    limit("temporal_change", profile["temporal_change"], policy.min_temporal_change, False, "temporal change")
    standins = validation.get("standins") or []
    if not policy.allow_standins:
        checks.append(Check("standins", not standins, f"{len(standins)} input(s) replaced by stand-ins"))
    return Verdict(entry["program"], all(c.passed for c in checks), checks)


def vet(catalogue, policy: Policy, renderer: str | None, flt=None) -> dict[str, Any]:
    """Judge every program the filter selects and store the verdicts; returns a summary."""
    from corpus.validations import store_verdicts, vetting_inputs

    verdicts: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    for entry in vetting_inputs(catalogue, renderer, flt):
        verdict = judge(policy, entry)
        if not verdict.vetted:
            first_failed = next(c.name for c in verdict.checks if not c.passed)
            reasons[first_failed] = reasons.get(first_failed, 0) + 1
        validation = entry.get("validation") or {}
        verdicts.append(
            {
                "program_id": entry["program_id"],
                "code_sha256": entry["code_sha256"],
                "renderer": validation.get("renderer") or renderer or "",
                "vetted": verdict.vetted,
                "reasons": verdict.reasons,
            }
        )
    store_verdicts(catalogue, verdicts, policy.hash)
    vetted = sum(1 for v in verdicts if v["vetted"])
    return {
        "policy_hash": policy.hash,
        "programs": len(verdicts),
        "vetted": vetted,
        "rejected": len(verdicts) - vetted,
        "rejected_by_first_failed_check": dict(sorted(reasons.items())),
    }


def advice(summary: dict[str, Any], policy: Policy) -> list[str]:
    """What a user should do after a :func:`vet` run, from why programs were rejected: warning
    lines (empty when there is nothing to say)."""
    rejected = summary["rejected_by_first_failed_check"]
    size = f"{policy.size}x{policy.size}"
    lines = []
    if rejected.get("profile"):
        lines.append(
            f"{rejected['profile']} programs have no {size} profile, the size this policy judges speed at: "
            f"validate at that size too (render validate --sizes 64,{policy.size} --again), "
            "or set `size` in a --policy file"
        )
    if not summary["vetted"] and summary["programs"]:
        if rejected.get("validated"):
            lines.insert(0, "nothing vetted: run `render validate` first")
        elif not rejected.get("profile"):
            lines.insert(0, "nothing vetted: see why with `render vet --explain SOURCE:ID`")
        else:
            lines[0] = "nothing vetted: " + lines[0]
    return lines


def explain(catalogue, policy: Policy, renderer: str | None, key: str) -> dict[str, Any]:
    """Why ``key`` is in or out: the policy's checks now, and the verdict stored (maybe stale)."""
    from corpus.filters import ProgramFilter
    from corpus.records import parse_program_key
    from corpus.validations import program_verdict, vetting_inputs

    source, external_id = parse_program_key(key)
    entries = [
        e
        for e in vetting_inputs(catalogue, renderer, ProgramFilter(sources=[source]))
        if e["program"] == f"{source}:{external_id}"
    ]
    program_verdict(catalogue, key)  # raises NotFoundError for an unknown program
    if not entries:
        raise UsageProblem(f"{key} is not selected by these filters")
    verdict = judge(policy, entries[0])
    stored = program_verdict(catalogue, key)
    return {
        **verdict.to_json(),
        "policy_hash": policy.hash,
        "validation": entries[0]["validation"],
        "stored": stored,
        "stored_is_current": bool(stored and stored["policy_hash"] == policy.hash and stored["current_code"]),
    }
