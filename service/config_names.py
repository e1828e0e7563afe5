"""Names in the configuration that nothing reads: a misspelt ``SIDEBAR_…`` variable or TOML key.

pydantic-settings looks up only the names the settings define, so ``SIDEBAR_REDIS_URLL`` would be
ignored and the service would start on the very default it was meant to change. Widget and
provider sections take open-ended keys (each widget validates its own options), so a name there
could slip by as well. Instead every name given is walked down the settings' shape: models by
their fields, the ``widgets`` and ``providers`` sections by the registry, a widget's section by
its own options model. A name that leads nowhere is reported, with the known name closest to it.
"""

from __future__ import annotations

import functools
import json
import tomllib
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from service.registry import Registry
from service.settings import ConfigError, ProviderSettings, Settings, WidgetSettings
from service.spelling import closest

#: Read by the settings themselves (not a field): the TOML file.
CONFIG_VARIABLE = "SIDEBAR_CONFIG"
ENV_PREFIX = "sidebar_"
ENV_DELIMITER = "__"
#: A name moved to another section (``SIDEBAR_ALLOWED_ORIGINS`` for ``…EMBED__ALLOWED_ORIGINS``)
#: is offered only when its own part matches this well: a guess across sections must be good.
MOVED_CUTOFF = 0.85
#: Deeper than any real setting; bounds the walk should a plug-in's options model refer to itself.
MAX_DEPTH = 8


@dataclass(frozen=True)
class Fields:
    """Fixed names (a model's fields, the registry's widgets or providers), each of its own shape."""

    names: Mapping[str, Callable[[], Shape]]
    #: What a name here is, for the message: ``widgets.weatherx: unknown widget``.
    kind: str = "setting"
    #: Names beyond ``names`` are accepted (a model with ``extra="allow"`` that nothing narrows).
    open: bool = False


@dataclass(frozen=True)
class Keys:
    """Keys of the operator's choosing (``sources.mine``), each value of one shape."""

    value: Callable[[], Shape]


@dataclass(frozen=True)
class Items:
    """A list, each element of one shape (``links.items``: each a title and a url)."""

    item: Callable[[], Shape]


@dataclass(frozen=True)
class Value:
    """A plain value (a number, a string, a tuple of numbers): no names below it."""


@dataclass(frozen=True)
class Anything:
    """Not narrowed here (several structured alternatives, ``Any``): left to validation."""


Shape = Fields | Keys | Items | Value | Anything
VALUE = Value()
ANYTHING = Anything()


def shape_of(annotation: Any) -> Shape:
    """The names a value of this type may have below it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return shape_of(args[0])
    if origin is Union or origin is types.UnionType:
        shapes = [shape_of(arg) for arg in args if arg is not type(None)]
        if len(shapes) == 1:
            return shapes[0]
        return VALUE if all(isinstance(shape, Value) for shape in shapes) else ANYTHING
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation)
    if origin is dict or origin is Mapping:
        return Keys(functools.partial(shape_of, args[1])) if len(args) == 2 else ANYTHING
    if origin in (list, set, frozenset, Sequence):
        return Items(functools.partial(shape_of, args[0])) if args else ANYTHING
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return Items(functools.partial(shape_of, args[0]))
        return VALUE if all(isinstance(shape_of(arg), Value) for arg in args) else ANYTHING
    if annotation is Any or annotation in (dict, list):
        return ANYTHING
    return VALUE


def model_shape(model: type[BaseModel], *, kind: str = "setting") -> Fields:
    names: dict[str, Callable[[], Shape]] = {}
    for name, info in model.model_fields.items():
        names[name] = functools.partial(shape_of, info.annotation)
        if isinstance(info.alias, str):
            names[info.alias] = names[name]
    return Fields(names, kind=kind, open=model.model_config.get("extra") == "allow")


def settings_shape(registry: Registry) -> Fields:
    """The whole settings tree: ``widgets`` and ``providers`` hold what the registry knows."""
    specs = registry.widgets.items()
    widgets = Fields(
        {name: functools.partial(_widget_shape, spec.options_model) for name, spec in specs}, kind="widget"
    )
    # A provider's section is what every provider understands: none declares keys of its own.
    provider = Fields(model_shape(ProviderSettings).names)
    providers = Fields({provider_id: lambda: provider for provider_id in registry.providers}, kind="provider")
    root = model_shape(Settings)
    return Fields({**root.names, "widgets": lambda: widgets, "providers": lambda: providers})


def _widget_shape(options_model: type[BaseModel]) -> Fields:
    """``[widgets.NAME]``: the keys every widget takes, then the widget's own options."""
    options = model_shape(options_model)
    return Fields({**options.names, **model_shape(WidgetSettings).names}, open=options.open)


@dataclass(frozen=True)
class Unknown:
    """One name nothing reads, worded for an operator."""

    #: Up to and including the unknown part: ``("widgets", "links", "colour")``.
    path: tuple[str, ...]
    kind: str
    #: Where it was written: the variable's name, ``in FILE`` or ``in VARIABLE`` (JSON inside it).
    source: str | None
    suggestion: str | None
    #: Listed when nothing is close and the choice is short (the widgets, the providers).
    known: tuple[str, ...] = ()

    def __str__(self) -> str:
        notes = [self.source] if self.source else []
        if self.suggestion:
            notes.append(f"did you mean {self.suggestion}?")
        elif self.known:
            notes.append(f"known: {', '.join(self.known)}")
        detail = f" ({', '.join(notes)})" if notes else ""
        return f"{'.'.join(self.path)}: unknown {self.kind}{detail}"


def describe(problems: Sequence[Unknown]) -> str:
    """One line for them all: an operator fixes every name in one go, not one per start."""
    return "; ".join(str(problem) for problem in problems)


def check_names(environ: Mapping[str, str], registry: Registry) -> None:
    """Raise ``ConfigError`` naming every ``SIDEBAR_…`` variable and TOML key nothing reads."""
    root = settings_shape(registry)
    problems = unknown_in_environment(environ, root)
    config = environ.get(CONFIG_VARIABLE)
    if config:
        problems += unknown_in_file(Path(config), root, label=config)
    if problems:
        raise ConfigError(describe(problems))


def unknown_in_environment(environ: Mapping[str, str], root: Fields) -> list[Unknown]:
    problems: list[Unknown] = []
    for variable in sorted(environ):
        lowered = variable.lower()
        if not lowered.startswith(ENV_PREFIX):
            continue
        if lowered == CONFIG_VARIABLE.lower():
            if variable != CONFIG_VARIABLE:  # looked up by its exact name, unlike the settings
                problems.append(Unknown((variable,), "variable", None, CONFIG_VARIABLE))
            continue
        # Matched without regard to case, as pydantic-settings matches them.
        parts = tuple(lowered[len(ENV_PREFIX) :].split(ENV_DELIMITER))
        if not all(parts):  # SIDEBAR_, SIDEBAR_HTTP__: an empty name, nothing to spell-check
            problems.append(Unknown((variable,), "variable", None, None))
            continue
        shape, index, node = _follow(root, parts)
        if index is not None:
            fixed = _suggest(root, parts, index)
            problems.append(
                Unknown(
                    parts[: index + 1],
                    _kind(node),
                    variable,
                    None if fixed is None else (ENV_PREFIX + ENV_DELIMITER.join(fixed)).upper(),
                    _known(node),
                )
            )
            continue
        # A whole section given as JSON (SIDEBAR_HTTP='{…}', a list of links): its keys count too.
        data = _json_object(environ[variable], shape)
        if data is not None:
            problems += _unknown_in_data(root, shape, data, parts, source=f"in {variable}")
    return problems


def unknown_in_file(path: Path, root: Fields, *, label: str) -> list[Unknown]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except (OSError, ValueError):  # missing or malformed: the settings say so in their own words
        return []
    # Top-level keys are matched without regard to case (pydantic-settings does so), others exactly.
    folded = {str(key).lower(): value for key, value in data.items()}
    return _unknown_in_data(root, root, folded, (), source=f"in {label}")


def unknown_in_sections(settings: Settings, registry: Registry) -> list[Unknown]:
    """The widget and provider sections of settings built in code (tests, embedding), not read."""
    root = settings_shape(registry)
    data = {
        "widgets": {name: section.model_dump() for name, section in settings.widgets.items()},
        "providers": {name: section.model_dump() for name, section in settings.providers.items()},
    }
    return _unknown_in_data(root, root, data, (), source=None)


def _unknown_in_data(
    root: Fields, shape: Shape, data: Any, path: tuple[str, ...], *, source: str | None
) -> list[Unknown]:
    problems = []
    for where, node in _walk(shape, data, path):
        fixed = _suggest(root, where, len(where) - 1, through_lists=True)
        suggestion = None if fixed is None else ".".join(fixed)
        problems.append(Unknown(where, _kind(node), source, suggestion, _known(node)))
    return problems


def _walk(shape: Shape, data: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Shape]]:
    """Every key of ``data`` that ``shape`` does not know, with the shape it was looked up in."""
    if isinstance(shape, Fields) and isinstance(data, Mapping):
        for key, value in data.items():
            child = shape.names.get(str(key))
            if child is None:
                if not shape.open:
                    yield (*path, str(key)), shape
            else:
                yield from _walk(child(), value, (*path, str(key)))
    elif isinstance(shape, Keys) and isinstance(data, Mapping):
        for key, value in data.items():
            yield from _walk(shape.value(), value, (*path, str(key)))
    elif isinstance(shape, Items) and isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(shape.item(), value, (*path, str(index)))


def _follow(
    root: Fields, parts: Sequence[str], *, through_lists: bool = False
) -> tuple[Shape, int | None, Shape]:
    """(the shape ``parts`` leads to, the index of the first part that leads nowhere, its parent)."""
    shape: Shape = root
    for index, part in enumerate(parts):
        if isinstance(shape, Anything):
            break
        if isinstance(shape, Fields):
            child = shape.names.get(part)
            if child is None:
                if shape.open:
                    return ANYTHING, None, shape
                return shape, index, shape
            shape = child()
        elif isinstance(shape, Keys):
            shape = shape.value()
        elif isinstance(shape, Items) and through_lists and part.isdigit():
            shape = shape.item()
        else:  # a value, or a list named by an environment variable: nothing has names below it
            return shape, index, shape
    return shape, None, shape


def _suggest(
    root: Fields, parts: tuple[str, ...], index: int, *, through_lists: bool = False
) -> tuple[str, ...] | None:
    """The known name meant, if one is close: misspelt in place, else moved to another section."""
    return _respelt(root, parts, through_lists) or _moved(root, parts, index)


def _respelt(root: Fields, parts: tuple[str, ...], through_lists: bool) -> tuple[str, ...] | None:
    """Each part that leads nowhere replaced by its closest sibling (``PROVIDER`` → ``PROVIDERS``)."""
    fixed = list(parts)
    for _ in range(len(parts) + 1):  # each round fixes one part, the last one checks the result
        _, index, node = _follow(root, fixed, through_lists=through_lists)
        if index is None:
            return tuple(fixed)
        if not isinstance(node, Fields):
            # Names below a value (SIDEBAR_WIDGETS__PRICES__ITEMS__0): the value itself is meant.
            return tuple(fixed[:index]) or None
        name = closest(fixed[index], node.names)
        if name is None:
            return None
        fixed[index] = name
    return None


def _moved(root: Fields, parts: tuple[str, ...], index: int) -> tuple[str, ...] | None:
    """A known name elsewhere whose last parts match the unknown tail (``allowed_origins``)."""
    tail = parts[index:]
    wanted = ENV_DELIMITER.join(tail)
    # Within a widget's or provider's section the operator named rightly, never into another's:
    # ``widgets.prices.title`` is not the satellite widget's ``title``.
    anchor = parts[:2] if index >= 2 and parts[0] in ("widgets", "providers") else ()
    ranked: list[tuple[float, int, tuple[str, ...]]] = []
    for known in _known_paths(root, ()):
        if len(known) < len(tail) or known[: len(known) - len(tail)] == parts[:index]:
            continue
        if known[: len(anchor)] != anchor:
            continue
        score = SequenceMatcher(None, wanted, ENV_DELIMITER.join(known[-len(tail) :])).ratio()
        if score >= MOVED_CUTOFF:
            ranked.append((-score, len(known), known))
    ranked.sort()
    # The best match, the shortest among equals (``http.user_agent``, not a provider's); none when
    # two are as good (``latitude``: the weather's or the prayer times'?).
    if not ranked or (len(ranked) > 1 and ranked[0][:2] == ranked[1][:2]):
        return None
    return ranked[0][2]


def _known_paths(shape: Shape, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every name the settings know, from ``prefix`` down."""
    if prefix:
        yield prefix
    if len(prefix) >= MAX_DEPTH:
        return
    # Fixed names only: below free keys (``sources.mine``) or a list's items nothing is in a
    # known place that an operator could have written somewhere else.
    if isinstance(shape, Fields):
        for name, child in shape.names.items():
            yield from _known_paths(child(), (*prefix, name))


def _kind(node: Shape) -> str:
    return node.kind if isinstance(node, Fields) else "setting"


def _known(node: Shape) -> tuple[str, ...]:
    return tuple(sorted(node.names)) if isinstance(node, Fields) and node.kind != "setting" else ()


def _json_object(text: str, shape: Shape) -> Any:
    """The JSON a structured setting was given as, or None (not JSON: validation will say so)."""
    if not isinstance(shape, Fields | Keys | Items) or not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
