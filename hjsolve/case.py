"""Case files (DESIGN §2): read TOML, apply ``--set`` overrides, validate, build a `Problem`.

Every check happens here, before any computation, and every failure is a one-line
`CaseError` of the form ``<file>: <dotted.key>: <reason>``.
"""
import copy
import math
import numbers
import operator
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .divergence import DIVERGENCES, make_divergence
from .errors import CaseError, DomainError
from .latent import options as latent_options
from .latent.spec import BUNDLED_REWARDS, SCHEDULERS, DiffusersModel, ImageRewardSpec, SpecError, resolve_model
from .mixture import GaussianMixture
from .pretrained import PythonScore
from .problem import Problem
from .rewards import REWARD_KINDS, import_callable
from .sde import CONTINUOUS_KINDS, DDPM
from .solvers import METHODS as _SOLVER_MODULES, solver_options_spec

METHODS = tuple(_SOLVER_MODULES)

DICT_SOURCE = "<dict>"
TOP_KEYS = ("title", "sde", "pretrained", "reward", "finetune", "solver", "output")
PRETRAINED_KINDS = ("gaussian_mixture", "python", "diffusers")
SYMMETRY_RTOL = 1e-12


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case: the `Problem` plus how to solve it and where to write results.

    ``raw`` is the normalised case (defaults filled in, overrides applied) as a plain
    TOML/JSON-able dict: ``case_from_dict(case.raw, case.source)`` rebuilds an equal Case.
    Two cases are equal when their ``source`` and ``raw`` are.
    """

    title: str
    problem: Problem
    method: str
    solver_options: dict
    output_dir: str
    source: str
    raw: dict

    def options(self, method=None):
        """The ``[solver.<method>]`` options for ``method`` (default ``self.method``); {} if none."""
        return dict(self.solver_options.get(method or self.method, {}))

    @property
    def kl_weights(self):
        """(N,) per-step KL weights w_t for ``ddpm`` (a scalar α broadcast); None if continuous."""
        if not self.problem.is_discrete:
            return None
        alpha = np.asarray(self.raw["finetune"]["alpha"], dtype=float)
        return np.broadcast_to(alpha, (self.problem.sde.steps,)).copy()

    def __eq__(self, other):
        if not isinstance(other, Case):
            return NotImplemented
        return (self.source, self.raw) == (other.source, other.raw)

    __hash__ = None


# --------------------------------------------------------------------------- public entry points


def load_case(path, overrides=None):
    """Read the TOML case file ``path``, apply ``overrides`` and validate it into a `Case`.

    ``overrides`` is a dict ``{"finetune.alpha": 0.2}`` (string values are parsed as TOML
    values, falling back to a plain string) or a list of ``"key=value"`` strings.
    """
    source = str(path)
    data = _read_toml(path)
    data = _apply_overrides(data, overrides, source)
    return case_from_dict(data, source=source, base_dir=Path(path).resolve().parent)


def case_from_dict(data, source=DICT_SOURCE, base_dir=None):
    """Validate a case given as a dict (the parsed TOML) and build the `Case`.

    ``base_dir`` is searched first when importing a python reward; it defaults to the
    folder of ``source`` when that is a file path.
    """
    source = str(source)
    if base_dir is None and source != DICT_SOURCE:
        base_dir = Path(source).parent
    if not isinstance(data, dict):
        raise CaseError(source, "<case>", f"expected a table of sections, got {_show(data)}")
    top = _Table(source, "", data)
    top.reject_unknown(TOP_KEYS)
    title = top.take("title", Text(_stem(source)))
    sde, sde_raw = _read_sde(top.section("sde"))
    pretrained, pretrained_raw = _read_pretrained(top.section("pretrained"), sde, base_dir)
    _check_latent_sections(top, pretrained)
    if pretrained.kind == "diffusers":  # the betas are the model's: keep only the sampler steps
        sde_raw = {"kind": "ddpm", "steps": sde.steps}
    reward, reward_raw = _read_reward(top.section("reward"), pretrained, base_dir)
    divergence, finetune_raw = _read_finetune(top.section("finetune"), sde, reward, pretrained)
    method, solver_options, solver_raw = _read_solver(top.section("solver", required=False))
    output_dir = _read_output(top.section("output", required=False), source)
    raw = {
        "title": title, "sde": sde_raw, "pretrained": pretrained_raw, "reward": reward_raw,
        "finetune": finetune_raw, "solver": solver_raw, "output": {"dir": output_dir},
    }
    problem = Problem(sde=sde, pretrained=pretrained, reward=reward, divergence=divergence)
    return Case(title=title, problem=problem, method=method, solver_options=solver_options,
                output_dir=output_dir, source=source, raw=raw)


def parse_override(text):
    """Split ``"key=value"`` into ``(key, value)``, the value parsed as a TOML value.

    A value that is not valid TOML is kept as a plain string (so ``sde.kind=ve`` works).
    """
    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise CaseError("", "--set", f"expected key=value, got {text!r}")
    return key, _parse_value(value)


# --------------------------------------------------------------------------- file and overrides


def _read_toml(path):
    """The parsed TOML of ``path``; any failure is a CaseError naming ``<file>``."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise CaseError(path, "<file>", "file not found") from None
    except OSError as exc:
        raise CaseError(path, "<file>", f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CaseError(path, "<file>", f"not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(path, "<file>", f"invalid TOML: {_one_line(exc)}") from None


def _parse_value(text):
    """``text`` as a TOML value (number, bool, list, quoted string, ...), else the plain string."""
    text = text.strip()
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["value"] if set(parsed) == {"value"} else text


def _override_items(overrides, source):
    """Normalise ``overrides`` (None, dict or list of "key=value") to (key, value) pairs."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [(str(k).strip(), _parse_value(v) if isinstance(v, str) else v) for k, v in overrides.items()]
    if isinstance(overrides, (list, tuple)) and all(isinstance(item, str) for item in overrides):
        items = []
        for item in overrides:
            try:
                items.append(parse_override(item))
            except CaseError as exc:
                raise CaseError(source, "--set", exc.reason) from None
        return items
    raise CaseError(source, "--set", "overrides must be a dict or a list of 'key=value' strings")


def _apply_overrides(data, overrides, source):
    """A copy of ``data`` with each dotted-key override set (before validation)."""
    data = copy.deepcopy(data)
    for key, value in _override_items(overrides, source):
        parts = key.split(".")
        if not all(parts):
            raise CaseError(source, key, "malformed dotted key")
        if parts[0] not in TOP_KEYS:
            raise CaseError(source, key, f"unknown key (top-level keys: {', '.join(TOP_KEYS)})")
        node = data
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CaseError(source, key, f"cannot set: {'.'.join(parts[:depth + 1])} is not a table")
        node[parts[-1]] = value
    return data


# --------------------------------------------------------------------------- typed fields

REQUIRED = object()


class _Invalid(Exception):
    """A value failed a check; the owning `_Table` turns it into a CaseError naming the key."""


@dataclass(frozen=True)
class Number:
    """A finite real (or integer) with optional bounds; booleans are rejected."""

    default: object = REQUIRED
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    integer: bool = False

    def parse(self, value):
        noun = "an integer" if self.integer else "a number"
        if isinstance(value, bool):
            raise _Invalid(f"expected {noun}, got {_show(value)} (a boolean is not a number)")
        if not isinstance(value, numbers.Integral if self.integer else numbers.Real):
            raise _Invalid(f"expected {noun}, got {_show(value)}")
        if not math.isfinite(value):
            raise _Invalid(f"must be finite (got {_show(value)})")
        for bound, sign, holds in ((self.gt, ">", operator.gt), (self.ge, ">=", operator.ge), (self.lt, "<", operator.lt)):
            if bound is not None and not holds(value, bound):
                raise _Invalid(f"must be {sign} {bound:g} (got {_show(value)})")
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Text:
    """A string, optionally one of ``choices``."""

    default: object = REQUIRED
    choices: tuple | None = None

    def parse(self, value):
        if not isinstance(value, str):
            raise _Invalid(f"expected a string, got {_show(value)}")
        if self.choices is not None and value not in self.choices:
            raise _Invalid(f"must be one of {', '.join(self.choices)} (got {value!r})")
        return value


@dataclass(frozen=True)
class Vector:
    """A list of ``length`` numbers (a point or direction in R^d)."""

    length: int
    default: object = REQUIRED

    def parse(self, value):
        return _number_list(value, Number(), self.length, f"d = {self.length} from pretrained.means")


@dataclass(frozen=True)
class RGB:
    """A colour: three numbers r, g, b in [0, 1]."""

    default: object = REQUIRED

    def parse(self, value):
        rgb = _number_list(value, Number(ge=0), 3, "(r, g, b)")
        if max(rgb) > 1:
            raise _Invalid(f"expected r, g, b in [0, 1], got {_show(value)}")
        return rgb


def _number_list(value, item, length=None, length_of=None):
    """``value`` as a list of floats, each checked by the `Number` ``item``; optionally of ``length``."""
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected a list of numbers, got {_show(value)}")
    if length is not None and len(value) != length:
        raise _Invalid(f"expected length {length} to match {length_of}, got {len(value)}")
    out = []
    for index, element in enumerate(value, start=1):
        try:
            out.append(item.parse(element))
        except _Invalid as exc:
            raise _Invalid(f"element {index}: {exc}") from None
    return out


class _Table:
    """One TOML table under validation: typed access by key, errors naming ``<file>: <dotted.key>``."""

    def __init__(self, source, path, data):
        self.source = source
        self.path = path
        self.data = data

    def key(self, name):
        return f"{self.path}.{name}" if self.path else name

    def error(self, name, reason):
        return CaseError(self.source, self.key(name), _one_line(reason))

    def parse(self, name, function, *args):
        """``function(*args)``, with an `_Invalid` turned into a CaseError naming ``name``."""
        try:
            return function(*args)
        except _Invalid as exc:
            raise self.error(name, str(exc)) from None

    def value(self, name):
        """The unchecked value of the required key ``name``."""
        if name not in self.data:
            raise self.error(name, "required")
        return self.data[name]

    def take(self, name, field):
        """The value of ``name`` checked by ``field``, or the field's default if absent."""
        if name not in self.data and field.default is not REQUIRED:
            return field.default
        return self.parse(name, field.parse, self.value(name))

    def take_all(self, fields):
        """{name: value} for every field; optional fields that are absent (default None) are left out."""
        values = {name: self.take(name, field) for name, field in fields.items()}
        return {name: value for name, value in values.items() if value is not None}

    def reject_unknown(self, allowed, context=""):
        """CaseError for the first key not in ``allowed``."""
        for name in self.data:
            if name not in allowed:
                raise self.error(name, f"unknown key{context} (allowed: {', '.join(allowed)})")

    def section(self, name, required=True):
        """The sub-table ``name`` as a `_Table` (empty if absent and not required)."""
        if name not in self.data:
            if required:
                raise self.error(name, f"missing section [{self.key(name)}]")
            return _Table(self.source, self.key(name), {})
        value = self.data[name]
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table [{self.key(name)}], got {_show(value)}")
        return _Table(self.source, self.key(name), value)


# --------------------------------------------------------------------------- sections

_T = Number(1.0, gt=0)
SDE_FIELDS = {
    "vp": {"T": _T, "beta_min": Number(0.1, gt=0), "beta_max": Number(20.0, gt=0)},
    "ve": {"T": _T, "sigma_min": Number(0.01, gt=0), "sigma_max": Number(10.0, gt=0)},
    "ou": {"T": _T, "theta": Number(1.0, gt=0), "sigma": Number(math.sqrt(2.0), gt=0)},
    "ddpm": {"steps": Number(integer=True, ge=1), "beta_1": Number(1e-4, gt=0, lt=1),
             "beta_N": Number(0.02, gt=0, lt=1)},
}
SDE_CLASSES = {**CONTINUOUS_KINDS, "ddpm": DDPM}
#: kind -> (smaller key, larger key, strict): the schedule's endpoints must be ordered.
SDE_ORDER = {"vp": ("beta_min", "beta_max", False), "ve": ("sigma_min", "sigma_max", True),
             "ddpm": ("beta_1", "beta_N", False)}


def _read_sde(table):
    """The forward SDE of ``[sde]`` and its normalised dict."""
    kind = table.take("kind", Text(choices=tuple(SDE_FIELDS)))
    fields = SDE_FIELDS[kind]
    table.reject_unknown(("kind", *fields), f" for sde.kind '{kind}'")
    params = table.take_all(fields)
    if kind in SDE_ORDER:
        low, high, strict = SDE_ORDER[kind]
        if params[high] < params[low] or (strict and params[high] == params[low]):
            sign = ">" if strict else ">="
            raise table.error(high, f"must be {sign} sde.{low} (got {low} = {params[low]:g}, {high} = {params[high]:g})")
    return SDE_CLASSES[kind](**params), {"kind": kind, **params}


def _read_pretrained(table, sde, base_dir):
    """The pretrained model of ``[pretrained]`` and its normalised dict."""
    kind = table.take("kind", Text(choices=PRETRAINED_KINDS))
    if kind == "python":
        return _read_python_pretrained(table, sde, base_dir)
    if kind == "diffusers":
        return _read_diffusers_pretrained(table, sde, base_dir)
    table.reject_unknown(("kind", "weights", "means", "covs", "stds"), f" for pretrained.kind '{kind}'")
    weights = table.parse("weights", _weights, table.value("weights"))
    means = table.parse("means", _means, table.value("means"), len(weights))
    raw = {"kind": kind, "weights": weights, "means": means}
    has_covs, has_stds = "covs" in table.data, "stds" in table.data
    if has_covs == has_stds:
        raise table.error("covs", "give exactly one of pretrained.covs or pretrained.stds")
    if has_covs:
        raw["covs"] = table.parse("covs", _covs, table.data["covs"], len(weights), len(means[0]))
        covs = np.asarray(raw["covs"])
    else:
        raw["stds"] = table.parse("stds", _number_list, table.data["stds"], Number(gt=0), len(weights),
                                  "pretrained.weights")
        covs = np.asarray(raw["stds"])[:, None, None] ** 2 * np.eye(len(means[0]))
    return GaussianMixture(weights, means, covs), raw


PYTHON_PRETRAINED_FIELDS = {"score": Text(), "dimension": Number(integer=True, ge=1)}


def _read_python_pretrained(table, sde, base_dir):
    """A `PythonScore` (``score = "module:callable"`` taking (s, x)) and its normalised dict."""
    table.reject_unknown(("kind", *PYTHON_PRETRAINED_FIELDS), " for pretrained.kind 'python'")
    params = table.take_all(PYTHON_PRETRAINED_FIELDS)
    if isinstance(sde, DDPM):
        raise table.error("kind", "pretrained.kind 'python' needs a continuous sde (vp, ve or ou)")
    try:
        model = PythonScore(params["score"], params["dimension"], sde, search_dir=base_dir)
    except Exception as exc:  # user code: any failure while importing is the user's to fix
        raise table.error("score", f"cannot import {params['score']!r}: {type(exc).__name__}: {exc}") from None
    if not callable(model._function):
        raise table.error("score", f"{params['score']!r} is not callable")
    return model, {"kind": "python", **params}


DIFFUSERS_FIELDS = {"model": Text(), "scheduler": Text("ddpm", choices=SCHEDULERS), "guidance_scale": Number(1.0, ge=1),
                    "negative_prompt": Text(""), "height": Number(None, integer=True, ge=1),
                    "width": Number(None, integer=True, ge=1)}


def _read_diffusers_pretrained(table, sde, base_dir):
    """A `DiffusersModel` (a local Stable Diffusion folder, prompts, scheduler, guidance) and its dict."""
    table.reject_unknown(("kind", "prompts", *DIFFUSERS_FIELDS), " for pretrained.kind 'diffusers'")
    if not isinstance(sde, DDPM):
        raise table.error("kind", "pretrained.kind 'diffusers' needs sde.kind = 'ddpm' (its steps are the sampler steps)")
    params = table.take_all(DIFFUSERS_FIELDS)
    params["prompts"] = table.parse("prompts", _prompts, table.value("prompts"))
    try:
        path = resolve_model(params["model"], base_dir)
    except SpecError as exc:
        raise table.error("model", str(exc)) from None
    try:
        model = DiffusersModel(path=path, **params)
    except SpecError as exc:
        blamed = next((k for k in ("height", "width") if str(exc).startswith(k)), "model")
        raise table.error(blamed, str(exc)) from None
    return model, {"kind": "diffusers", **params}


def _prompts(value):
    """A non-empty list of strings."""
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"expected a non-empty list of strings, got {_show(value)}")
    return list(value)


def _check_latent_sections(top, pretrained):
    """Cross-section rules of a diffusers case (and the latent options only there), before any work."""
    solver = top.data.get("solver", {})
    neural = solver.get("neural", {}) if isinstance(solver, dict) else {}
    neural = neural if isinstance(neural, dict) else {}
    if pretrained.kind != "diffusers":
        if "latent" in neural:
            raise CaseError(top.source, "solver.neural.latent", "only for pretrained.kind 'diffusers'")
        return
    sde = top.data["sde"]
    for key in ("beta_1", "beta_N"):
        if key in sde:
            raise CaseError(top.source, f"sde.{key}", "not used with pretrained.kind 'diffusers' (the betas come from the "
                            "model's scheduler config); give only sde.steps")
    finetune = top.data.get("finetune", {})
    if isinstance(finetune, dict):
        if finetune.get("divergence", "kl") != "kl":
            raise CaseError(top.source, "finetune.divergence", "pretrained.kind 'diffusers' supports only 'kl'")
        if isinstance(finetune.get("alpha"), (list, tuple)):
            raise CaseError(top.source, "finetune.alpha", "give one number for pretrained.kind 'diffusers'")
    method = solver.get("method", "exact") if isinstance(solver, dict) else None
    if method != "neural":
        raise CaseError(top.source, "solver.method", f"pretrained.kind 'diffusers' is solved by method 'neural' (got {method!r})")
    for key in neural:
        if key != "latent":
            raise CaseError(top.source, f"solver.neural.{key}", "not used with pretrained.kind 'diffusers'; "
                            "set the latent solver's options in [solver.neural.latent]")
    table = _Table(top.source, "solver.neural", neural).section("latent", required=False)
    spec = {name: kind for name, (kind, _) in latent_options.OPTIONS.items()}
    merged = latent_options.defaults()
    merged.update(_read_options(table, spec))
    for key, reason in latent_options.problems(merged):
        raise table.error(key, reason)


def _weights(value):
    weights = _number_list(value, Number(gt=0))
    if not weights:
        raise _Invalid("expected at least one component weight")
    return weights


def _means(value, count):
    """K rows of d coordinates each."""
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected a list of {count} rows, got {_show(value)}")
    if any(not isinstance(row, (list, tuple)) for row in value):
        raise _Invalid("expected a list of rows, one list of d coordinates per component "
                       "(in 1-D write means = [[-2.0], [2.0]], not [-2.0, 2.0])")
    if len(value) != count:
        raise _Invalid(f"expected {count} rows to match pretrained.weights, got {len(value)}")
    dimension = len(value[0])
    if dimension == 0:
        raise _Invalid("rows must have at least one coordinate")
    rows = []
    for index, row in enumerate(value, start=1):
        try:
            rows.append(_number_list(row, Number(), dimension, "the first row"))
        except _Invalid as exc:
            raise _Invalid(f"row {index}: {exc}") from None
    return rows


def _covs(value, count, dimension):
    """K symmetric positive definite d×d matrices."""
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected a list of {count} matrices, got {_show(value)}")
    if len(value) != count:
        raise _Invalid(f"expected {count} matrices to match pretrained.weights, got {len(value)}")
    matrices = []
    for index, matrix in enumerate(value, start=1):
        try:
            matrices.append(_spd_matrix(matrix, dimension))
        except _Invalid as exc:
            raise _Invalid(f"matrix {index}: {exc}") from None
    return matrices


def _spd_matrix(value, dimension):
    if not isinstance(value, (list, tuple)) or len(value) != dimension:
        raise _Invalid(f"expected a {dimension}x{dimension} matrix (d = {dimension} from pretrained.means), "
                       f"got {_show(value)}")
    rows = [_number_list(row, Number(), dimension, f"d = {dimension} from pretrained.means") for row in value]
    matrix = np.array(rows)
    if np.max(np.abs(matrix - matrix.T)) > SYMMETRY_RTOL * np.max(np.abs(matrix)):
        raise _Invalid(f"not symmetric: {_show(rows)}")
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise _Invalid(f"not positive definite (Cholesky failed): {_show(rows)}") from None
    return rows


def _reward_fields(dimension):
    """kind -> {key: field} for ``[reward]`` in dimension d."""
    point = Vector(dimension)
    return {
        "quadratic": {"center": point, "scale": Number(1.0, gt=0)},
        "linear": {"weight": point, "offset": Number(0.0)},
        "bump": {"center": point, "height": Number(1.0), "width": Number(1.0, gt=0)},
        "sigmoid": {"weight": point, "offset": Number(0.0), "height": Number(1.0)},
        "python": {"function": Text(), "gradient": Text(None), "upper_bound": Number(None),
                   "lower_bound": Number(None)},
    }


def _read_reward(table, pretrained, base_dir):
    """The reward of ``[reward]`` and its normalised dict."""
    kind = table.take("kind", Text(choices=(*REWARD_KINDS, "image")))
    latent = pretrained.kind == "diffusers"
    if latent != (kind == "image"):
        reason = ("pretrained.kind 'diffusers' needs reward.kind = 'image' (a reward on decoded images)" if latent
                  else "reward.kind 'image' needs pretrained.kind = 'diffusers'")
        raise table.error("kind", reason)
    if latent:
        return _read_image_reward(table, base_dir)
    fields = _reward_fields(pretrained.dimension)[kind]
    table.reject_unknown(("kind", *fields), f" for reward.kind '{kind}'")
    params = table.take_all(fields)
    extra = {}
    if kind == "python":
        _check_python_reward(table, params, base_dir)
        extra["search_dir"] = base_dir
    return REWARD_KINDS[kind](**params, **extra), {"kind": kind, **params}


#: Parameters of the bundled image rewards (`hjsolve.latent.rewards`).
IMAGE_REWARD_PARAMS = {
    "brightness": {"scale": Number(1.0)},
    "colour": {"target": RGB(), "scale": Number(1.0, gt=0)},
    "smoothness": {"scale": Number(1.0, gt=0)},
    "aesthetic": {"clip": Text(), "weights": Text()},
    "imagereward": {"weights": Text(), "med_config": Text()},
}


def _read_image_reward(table, base_dir):
    """An `ImageRewardSpec` (bundled name or ``module:callable`` with ``params``) and its dict."""
    table.reject_unknown(("kind", "function", "params"), " for reward.kind 'image'")
    function = table.take("function", Text())
    params = table.section("params", required=False)
    if function in BUNDLED_REWARDS:
        fields = IMAGE_REWARD_PARAMS[function]
        params.reject_unknown(tuple(fields), f" for reward.function '{function}'")
        values = params.take_all(fields)
        for name in ("clip", "weights", "med_config"):
            if name in values and not Path(values[name]).expanduser().exists():
                raise params.error(name, f"{values[name]!r} not found (reward.function '{function}' needs its weights "
                                   "locally; hjsolve does not download them)")
    elif ":" in function:
        _check_python_reward(table, {"function": function}, base_dir)
        values = copy.deepcopy(params.data)
    else:
        raise table.error("function", f"expected one of {', '.join(BUNDLED_REWARDS)} or 'module:callable' (got {function!r})")
    return ImageRewardSpec(function, values, search_dir=base_dir), {"kind": "image", "function": function, "params": values}


def _check_python_reward(table, params, base_dir):
    """Import the user's callables now, so a bad spec fails with the key that names it."""
    for name in ("function", "gradient"):
        if name in params:
            try:
                target = import_callable(params[name], base_dir)
            except Exception as exc:  # user code: any failure while importing is the user's to fix
                raise table.error(name, f"cannot import {params[name]!r}: {type(exc).__name__}: {exc}") from None
            if not callable(target):
                raise table.error(name, f"{params[name]!r} is not callable")
    if params.get("lower_bound", -math.inf) > params.get("upper_bound", math.inf):
        raise table.error("lower_bound", "must be <= reward.upper_bound")


def _read_finetune(table, sde, reward, pretrained):
    """The divergence of ``[finetune]`` (checked on its domain) and its normalised dict."""
    name = table.take("divergence", Text("kl", choices=DIVERGENCES))
    fields = ("alpha", "divergence", "gamma") if name == "gamma" else ("alpha", "divergence")
    table.reject_unknown(fields, f" for finetune.divergence '{name}'")
    alpha = _read_alpha(table, sde, name)
    gamma = table.take("gamma", Number(gt=0, lt=1)) if name == "gamma" else None
    blamed = "gamma" if name == "gamma" else "divergence"
    try:
        divergence = make_divergence(name, alpha[0] if isinstance(alpha, list) else alpha, gamma)
        divergence.check_domain(reward, pretrained)
    except DomainError as exc:
        raise table.error(blamed, str(exc)) from None
    raw = {"alpha": alpha, "divergence": name}
    if gamma is not None:
        raw["gamma"] = gamma
    return divergence, raw


def _read_alpha(table, sde, divergence):
    """α > 0, or for ddpm with kl a list of ``steps`` positive per-step KL weights."""
    value = table.data.get("alpha")
    if not isinstance(value, (list, tuple)):
        return table.take("alpha", Number(gt=0))
    if not isinstance(sde, DDPM):
        raise table.error("alpha", "a list of per-step weights needs sde.kind = 'ddpm'; give one number")
    if divergence != "kl":
        raise table.error("alpha", f"a list of per-step weights needs divergence 'kl' (got '{divergence}')")
    return table.parse("alpha", _number_list, value, Number(gt=0), sde.steps, "sde.steps")


def _read_solver(table):
    """(method, {method: options}, normalised dict) of ``[solver]`` and its sub-tables."""
    method = table.take("method", Text("exact", choices=METHODS))
    table.reject_unknown(("method", *METHODS))
    _options_spec(table, method, "method")
    options = {}
    for name in METHODS:
        if name in table.data:
            options[name] = _read_options(table.section(name), _options_spec(table, name, name))
    return method, options, {"method": method, **copy.deepcopy(options)}


def _options_spec(table, method, key):
    """{option: type} of ``method``; a solver that cannot be imported (a missing extra) is a
    CaseError naming ``solver.<key>``."""
    try:
        return solver_options_spec(method)
    except ImportError as exc:
        raise table.error(key, f"method '{method}' is unavailable: {exc}") from None


def _read_options(table, spec):
    """The options of one ``[solver.<method>]`` table, typed by ``spec`` {option: type}."""
    table.reject_unknown(tuple(spec))
    return {name: table.parse(name, _typed_option, value, spec[name]) for name, value in table.data.items()}


def _typed_option(value, expected):
    """``value`` if it has one of the ``expected`` types (int accepted for float, bool never a number)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    for kind in types:
        if kind is float and isinstance(value, numbers.Real):
            return Number().parse(value)
        if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if kind not in (float, int) and isinstance(value, typing.get_origin(kind) or kind):
            return value
    names = " or ".join(getattr(kind, "__name__", str(kind)) for kind in types)
    raise _Invalid(f"expected {names}, got {_show(value)}")


def _read_output(table, source):
    """The output folder of ``[output]``, default ``results/<case file stem>``."""
    table.reject_unknown(("dir",))
    return table.take("dir", Text(f"results/{_stem(source)}"))


# --------------------------------------------------------------------------- small helpers


def _stem(source):
    """The case file's stem, or "case" for a case given as a dict."""
    return "case" if source == DICT_SOURCE else Path(source).stem


def _one_line(text):
    return " ".join(str(text).split())


def _show(value, limit=60):
    """A short one-line rendering of a TOML value for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        text = repr(float(value))
    elif isinstance(value, dict):
        text = "a table"
    else:
        text = repr(value)
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
