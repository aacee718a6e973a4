"""The Hydra config of `train.py` as typed settings, with one-line errors for values of the wrong kind.

Hydra (struct mode) already rejects unknown keys; this module checks that each
value has the type of the dataclass field it fills, so ``search.popsize=abc``
fails before anything runs rather than deep inside EvoTorch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from autotts.controllers.learned import ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape
from autotts.discovery.imitation import ImitationConfig
from autotts.discovery.knob import KNOB_TOLERANCE
from autotts.discovery.objective import ObjectiveConfig
from autotts.discovery.search import SearchConfig
from autotts.discovery.validation import ValidationConfig
from autotts.errors import AutottsError


@dataclass(frozen=True)
class TrainerSettings:
    generations: int = 20
    validate_every: int = 5
    accelerator: str = "auto"
    devices: Any = "auto"           # "auto", a count, or a list of device ids (as Lightning takes them)
    strategy: str = "auto"          # "auto"/"ddp": several devices run DDP ranks sharing the population
    max_minutes: float = 0.0        # wall-clock budget of the whole run (0 = none); stops generations in time
    reserve_minutes: float = 0.5    # kept back for the final validation, monotone check and export
    progress_bar: bool = True


@dataclass(frozen=True)
class MonotoneSettings:
    betas: int = 11
    seeds: int = 3
    finalists: int = 1   # the best validated generations re-checked at `seeds` seeds; 1 = only the best
    tops: tuple[float, ...] = ()  # when no finalist keeps the knob rule: β=1 acts as β=top (first that keeps it)
    tolerance: float = KNOB_TOLERANCE  # points the knob rule allows at this check (the judged rule's)
    teacher_switch: bool = False  # run CMC at the β where the export did not beat it (autotts.discovery.teacher_map)


@dataclass(frozen=True)
class LoggerSettings:
    kind: str = "none"              # "wandb" or "none"
    project: str = "autotts"
    offline: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    name: str
    seed: int
    threads: int
    search_stores: tuple[str, ...]
    validation_stores: tuple[str, ...]
    spec: ActionSpec
    guards: tuple[GuardSpec, ...]
    shape: PolicyShape
    search: SearchConfig
    objective: ObjectiveConfig
    validation: ValidationConfig
    monotone: MonotoneSettings
    imitation: ImitationConfig
    use_imitation: bool
    trainer: TrainerSettings
    logger: LoggerSettings
    ckpt_path: str | None = None
    init: str | None = None         # start weights: the best validated weights of a discovery checkpoint
    step_mode: str = "auto"         # env.step_mode: auto (dense on CUDA, sparse on CPU), sparse or dense
    raw: dict = field(default_factory=dict)  # the resolved config, for the logger and the manifest


def settings_from(cfg: Mapping[str, Any]) -> Settings:
    """Typed settings from a resolved config mapping (`OmegaConf.to_container(cfg, resolve=True)`)."""
    env = _group(cfg, "env")
    guards = tuple(_guard(g, i) for i, g in enumerate(_typed("env.guards", env.pop("guards", None) or [], tuple)))
    step_mode = _typed("env.step_mode", env.pop("step_mode", "auto"), str)
    imitation = _group(cfg, "imitation")
    use_imitation = _typed("imitation.enabled", imitation.pop("enabled", False), bool)
    logger = _group(cfg, "logger")
    wandb = logger.get("wandb")
    logger_settings = (build(LoggerSettings, dict(_group(logger, "wandb", "logger."), kind="wandb"), "logger.wandb")
                       if wandb else LoggerSettings())
    store = store_lists(_group(cfg, "store"))
    settings = Settings(
        name=_typed("name", cfg.get("name", "default"), str), seed=_typed("seed", cfg.get("seed", 0), int),
        threads=_typed("threads", cfg.get("threads", 1), int),
        search_stores=_names(store.get("search"), "store.search"),
        validation_stores=_names(store.get("validation"), "store.validation"),
        spec=build(ActionSpec, env, "env"), guards=guards,
        shape=_shape(_group(cfg, "controller")),
        search=build(SearchConfig, _group(cfg, "search"), "search"),
        objective=build(ObjectiveConfig, _group(cfg, "objective"), "objective"),
        validation=_float_betas(build(ValidationConfig, _group(cfg, "validation"), "validation"), "validation"),
        monotone=build(MonotoneSettings, _group(cfg, "monotone"), "monotone"),
        imitation=_float_betas(build(ImitationConfig, imitation, "imitation"), "imitation"),
        use_imitation=use_imitation,
        trainer=build(TrainerSettings, _group(cfg, "trainer"), "trainer"), logger=logger_settings,
        ckpt_path=_typed("ckpt_path", cfg.get("ckpt_path"), str), init=_typed("init", cfg.get("init"), str),
        step_mode=step_mode,
        raw=dict(cfg))
    _check(settings)
    return settings


def _group(cfg: Mapping[str, Any], key: str, prefix: str = "") -> dict:
    """A config group as a fresh dict (absent or null: empty), or a one-line error if it is not a mapping."""
    value = cfg.get(key)
    return dict(_typed(prefix + key, value, dict)) if value is not None else {}


def store_lists(store: dict) -> dict:
    """``store`` with its ``search`` and ``validation`` lists, built from the views of a model set if it has one.

    With ``models``: search = each model's ``search_split``, validation = each model's ``valid_split``;
    then ``validation_extra`` (e.g. shifted synthetic stores) is appended in every case -- the stores
    the exported generation is chosen on -- and ``search_extra`` (e.g. fresh draws of the shifted
    generator) to the search stores. ``hold_out`` (leave one model out) drops that model's stores from
    both lists, so nothing of it, not even its shifted store, chooses the export it is scored on.
    """
    out = dict(store)
    models = out.pop("models", None)
    search_split, valid_split, hold_out = out.pop("search_split", None), out.pop("valid_split", None), \
        out.pop("hold_out", None)
    extra = out.pop("validation_extra", None) or []
    search_extra = out.pop("search_extra", None) or []
    if models is not None:
        if not isinstance(models, (list, tuple)) or not models or not all(isinstance(m, str) for m in models):
            raise AutottsError(f"store.models={models!r}: expected a non-empty list of model names")
        for key, value in (("search_split", search_split), ("valid_split", valid_split)):
            if not isinstance(value, str) or not value:
                raise AutottsError(f"store.{key}={value!r}: expected a dataset name such as aime24")
        if search_split == valid_split:
            raise AutottsError(f"store.valid_split={valid_split}: must differ from store.search_split (held out)")
        if hold_out is not None and hold_out not in models:
            raise AutottsError(f"store.hold_out={hold_out!r}: expected one of {', '.join(models)} or null")
        out["search"] = [f"{m}/{search_split}" for m in models]
        out["validation"] = [f"{m}/{valid_split}" for m in models]
    given = [] if models is not None else [(k, out[k]) for k in ("search", "validation") if out.get(k) is not None]
    for key, value in given + [("validation_extra", extra), ("search_extra", search_extra)]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise AutottsError(f"store.{key}={value!r}: expected a list of store specs")
    out["validation"] = list(out.get("validation") or []) + list(extra)
    if search_extra:
        out["search"] = list(out.get("search") or []) + list(search_extra)
    if hold_out is not None:
        for key in ("search", "validation"):
            out[key] = [s for s in out.get(key) or [] if not _of_model(s, hold_out)]
    return out


def _of_model(spec: str, model: str) -> bool:
    """Whether a store spec names ``model``: ``<model>/<split>``, a path ``.../<model>/<split>.json.gz``
    (stores are filed under their model's folder) or ``shifted:<model>[,seed=N]``."""
    if spec.startswith("shifted:"):
        return spec.split(",")[0] == f"shifted:{model}"
    parts = Path(spec).parts
    return len(parts) >= 2 and parts[-2] == model


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """`cls(**values)` with each value checked against the type of the field's default."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise AutottsError(f"{where}.{key}: unknown setting (expected one of {', '.join(fields)})")
        nullable = value is None and _default(fields[key]) is None
        kwargs[key] = None if nullable else _typed(f"{where}.{key}", value, _kind(fields[key]))
    return cls(**kwargs)


def _kind(f: dataclasses.Field) -> type:
    """The type a setting's value must have: its default's, or for ``X | None`` fields X (None allowed)."""
    default = _default(f)
    if f.type in ("Any", Any):
        return object
    if default is None:
        declared = str(f.type).replace(" ", "").split("|")
        return {"float": float, "int": int, "str": str}.get(declared[0], object)
    return type(default)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _typed(where: str, value: Any, kind: type) -> Any:
    """`value` as `kind` (int, float, bool, str, tuple, dict), or a one-line error naming the key."""
    if kind is object or value is None and kind is str:
        return value
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), str: isinstance(value, str),
          tuple: isinstance(value, (list, tuple)), dict: isinstance(value, dict)}.get(kind, True)
    if not ok:
        raise AutottsError(f"{where}={value!r}: expected {_KIND_NAMES.get(kind, kind.__name__)}")
    if kind is tuple:
        return tuple(value)
    return float(value) if kind is float else value


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", tuple: "a list",
               dict: "a mapping"}


def _shape(values: dict) -> PolicyShape:
    """Only the hidden width is a setting: the input sizes are fixed by the feature module."""
    if set(values) - {"hidden"}:
        raise AutottsError(f"controller.{sorted(set(values) - {'hidden'})[0]}: unknown setting (expected hidden; "
                           "input sizes follow autotts.controllers.features)")
    shape = build(PolicyShape, values, "controller")
    if shape.hidden < 1:
        raise AutottsError(f"controller.hidden={shape.hidden}: expected >= 1")
    return shape


def _float_betas(cfg: Any, where: str) -> Any:
    betas = cfg.betas
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in betas):
        raise AutottsError(f"{where}.betas={list(betas)!r}: expected a list of numbers in [0, 1]")
    return dataclasses.replace(cfg, betas=tuple(float(b) for b in betas))


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise AutottsError(f"{where}={value!r}: expected a non-empty list of store paths or names")
    return tuple(value)


def _guard(value: Any, i: int) -> GuardSpec:
    from autotts.controllers.rules import GUARDS, guard_problem
    if not isinstance(value, dict) or "name" not in value:
        raise AutottsError(f"env.guards[{i}]={value!r}: expected {{name: ..., params: {{...}}}}")
    name, params = value["name"], value.get("params") or {}
    if name not in GUARDS:
        raise AutottsError(f"env.guards[{i}].name={name!r}: expected one of {', '.join(GUARDS)}")
    problem = guard_problem(name, params)
    if problem:
        raise AutottsError(f"env.guards[{i}]: {problem}")
    return GuardSpec(name, dict(params))


BIG = 10**9
# Setting -> (low, high, low inclusive): numbers outside fail in one line before anything runs.
RANGES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, 10**18, True), "threads": (1, 1024, True),
    "search.popsize": (2, BIG, True), "search.stdev_init": (0, 1e6, False), "search.center_lr": (0, 1e6, False),
    "search.stdev_lr": (0, 1e6, True), "search.stdev_min": (0, 1e6, True), "search.stdev_head": (0, 1e6, False),
    "search.mutation_stdev": (0, 1e6, False), "search.tournament_size": (1, BIG, True),
    "search.restarts": (1, 1000, True),
    "objective.episodes_per_store": (1, BIG, True), "objective.betas": (1, 10**6, True),
    "objective.lambda0": (0, 1e6, True), "objective.ratio": (0, 1e12, False),
    "objective.monotone_weight": (0, 1e6, True), "objective.hold": (1, BIG, True),
    "objective.anchor": (0, 1e6, True), "objective.band": (0, 1e6, True), "objective.reference_seeds": (1, BIG, True),
    "validation.seeds": (1, 10**6, True), "monotone.betas": (11, 10**6, True), "monotone.seeds": (1, 10**6, True),
    "monotone.finalists": (1, 1000, True), "monotone.tolerance": (0, 100, True),
    "imitation.episodes_per_store": (1, BIG, True), "imitation.keep": (0, 1, False),
    "imitation.steps": (0, BIG, True), "imitation.dagger": (0, BIG, True), "imitation.batch": (1, BIG, True),
    "imitation.lr": (0, 1e6, False),
    "imitation.stop_weight": (0, 1e6, True), "imitation.prune_weight": (0, 1e6, True),
    "trainer.generations": (1, BIG, True), "trainer.validate_every": (1, BIG, True),
    "trainer.max_minutes": (0, 1e7, True), "trainer.reserve_minutes": (0, 1e7, True),
    "env.slots": (1, 4096, True), "env.max_open": (1, 4096, True), "env.burst": (1, 10**6, True),
    "controller.hidden": (1, 4096, True),
}
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _in_range(key: str, value: Any) -> None:
    lo, hi, closed = RANGES[key]
    if value is None:
        return
    if not (math.isfinite(value) and (lo <= value if closed else lo < value) and value <= hi):
        left = "[" if closed else "("
        raise AutottsError(f"{key}={value!r}: expected a value in {left}{_bound(lo)}, {_bound(hi)}]")


def _bound(x: float) -> str:
    """1000, 10^9, 0.5: as a reader writes them."""
    exponent = math.log10(x) if x > 0 else 0
    return f"10^{round(exponent)}" if x >= 10**5 and exponent == round(exponent) else f"{x:g}"


def _check_ranges(s: Settings) -> None:
    """Every number of `RANGES` (a NaN or a negative count fails here, not inside EvoTorch or the env)."""
    groups = {"search": s.search, "objective": s.objective, "validation": s.validation, "monotone": s.monotone,
              "imitation": s.imitation, "trainer": s.trainer, "env": s.spec, "controller": s.shape}
    for key in RANGES:
        group, _, name = key.rpartition(".")
        _in_range(key, getattr(groups[group], name) if group else getattr(s, name))
    for where, betas in (("validation.betas", s.validation.betas), ("imitation.betas", s.imitation.betas)):
        if not betas or not all(math.isfinite(b) and 0 <= b <= 1 for b in betas):
            raise AutottsError(f"{where}={list(betas)}: expected a non-empty list of values in [0, 1]")
    if s.trainer.accelerator not in ACCELERATORS:
        raise AutottsError(f"trainer.accelerator={s.trainer.accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    strategy = s.trainer.strategy
    if not strategy.startswith(("ddp", "fsdp", "deepspeed")) and strategy not in ("auto", "es_ddp", "single_device"):
        raise AutottsError(f"trainer.strategy={strategy!r}: expected auto or ddp")
    if not _devices_ok(s.trainer.devices):
        raise AutottsError(f"trainer.devices={s.trainer.devices!r}: expected auto, a count, or a list of device ids")


def _devices_ok(devices: Any) -> bool:
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return 1 <= devices <= 4096  # not -1: Lightning would take every CPU as a DDP rank
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        if devices == "auto" or not parts or not all(p.isdigit() and len(p) < 5 for p in parts):
            return devices == "auto"
        return "," in devices or int(parts[0]) >= 1  # "2" counts devices, "0,1" names them
    if isinstance(devices, (list, tuple)):
        return bool(devices) and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 4096 for d in devices)
    return False


def _check(s: Settings) -> None:
    """Ranges that the dataclasses cannot express."""
    from autotts.discovery.imitation import TEACHERS
    from autotts.discovery.search import ALGORITHMS
    from autotts.env.dense import STEP_MODES
    bad_teachers = [t for t in s.imitation.teachers if t not in TEACHERS]
    checks = [
        (not bad_teachers and len(s.imitation.teachers) >= 1,
         f"imitation.teachers={list(s.imitation.teachers)}: expected a non-empty list of {' and '.join(TEACHERS)} "
         "(SC, ASC and ESC read whole branches in one action: no head imitates them)"),
        (s.objective.reference in ("",) + TEACHERS,
         f"objective.reference={s.objective.reference!r}: expected '' (the λ(β) price) "
         f"or one of {', '.join(TEACHERS)}"),
        (s.objective.anchor_reference in ("",) + TEACHERS
         and (s.objective.reference or not s.objective.anchor_reference),
         f"objective.anchor_reference={s.objective.anchor_reference!r}: expected '' or one of {', '.join(TEACHERS)}, "
         "with objective.reference set"),
        (s.trainer.generations >= 1, f"trainer.generations={s.trainer.generations}: expected >= 1"),
        (s.trainer.validate_every >= 1, f"trainer.validate_every={s.trainer.validate_every}: expected >= 1"),
        (s.trainer.max_minutes >= 0, f"trainer.max_minutes={s.trainer.max_minutes}: expected >= 0 (0 = no budget)"),
        (s.threads >= 1, f"threads={s.threads}: expected >= 1"),
        (s.search.algorithm in ALGORITHMS,
         f"search.algorithm={s.search.algorithm!r}: expected one of {', '.join(ALGORITHMS)}"),
        (s.search.popsize >= 2, f"search.popsize={s.search.popsize}: expected >= 2"),
        (s.objective.episodes_per_store >= 1 and s.objective.betas >= 1,
         f"objective.episodes_per_store={s.objective.episodes_per_store}, objective.betas={s.objective.betas}: "
         "expected both >= 1"),
        (len(s.validation.betas) >= 1 and all(0 <= b <= 1 for b in s.validation.betas),
         f"validation.betas={list(s.validation.betas)}: expected values in [0, 1]"),
        (s.validation.protocol in ("reference", "subsets"),
         f"validation.protocol={s.validation.protocol!r}: expected reference or subsets"),
        (s.monotone.betas >= 11, f"monotone.betas={s.monotone.betas}: expected >= 11 grid points"),
        (all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in s.monotone.tops),
         f"monotone.tops={list(s.monotone.tops)}: expected values in (0, 1) (the β that β=1 acts as)"),
        (s.spec.slots >= 1 and 1 <= s.spec.max_open <= s.spec.slots and s.spec.burst >= 1,
         f"env: expected slots >= 1, 1 <= max_open <= slots, burst >= 1 (got {s.spec})"),
        (s.step_mode in STEP_MODES, f"env.step_mode={s.step_mode!r}: expected one of {', '.join(STEP_MODES)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise AutottsError(message)
    _check_ranges(s)
    s.shape.frozen(s.search.freeze)  # unknown names fail here, before imitation runs
    if s.search.algorithm == "relaxed":
        from autotts.discovery.relaxed_search import relaxed_config
        relaxed_config(s.search)  # its own keys and ranges, before anything runs
