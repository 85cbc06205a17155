"""Recipes: a training run written down as a TOML file, so a result is one command, not a line of flags.

A recipe has a ``[train]`` table of ``TrainConfig`` fields (the names of ``eqprop train``'s flags, with ``_`` for
``-``) and an optional ``[recipe]`` table about it::

    [recipe]
    about = "MNIST 1568-100-20 (Kendall et al. 2020's size), 10 epochs"
    out = "runs/mnist-kendall"      # the run directory when --out is not given
    needs = "--data PATH to MNIST"  # what the command line must add (said when it is missing)

    [train]
    dataset = "mnist"
    hidden = [100]
    lr = [20, 5]

``eqprop train --config recipes/mnist-kendall.toml --data mnist.npz`` trains it; flags given beside
``--config`` override the recipe's values. The recipes of the README's results live in ``recipes/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eqprop.learning.trainer import ConfigError, TrainConfig

RECIPE_KEYS = ("about", "out", "needs", "reference")


class RecipeError(ConfigError):
    """A recipe file that cannot be read or does not describe a training run."""


@dataclass
class Recipe:
    path: str
    train: dict  # TrainConfig fields
    about: str = ""
    out: str | None = None
    needs: str = ""
    reference: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def config(self, **override) -> TrainConfig:
        """The recipe's config with ``override`` (flags given beside --config) on top, validated."""
        try:
            return TrainConfig.from_dict({**self.train, **override}, where=f"{self.path} [train]").validate()
        except TypeError as exc:
            raise RecipeError(f"{self.path}: {exc}") from None


def toml_tables(path, what: str, sections, error, example: str) -> dict:
    """A TOML file of the given top-level tables (a sweep or search file), or one ``error`` line: a directory,
    a missing file, invalid TOML, or a table it does not have (``example``: the docs file that shows one)."""
    import tomli

    from eqprop.learning.rundir import read_parsed

    path = Path(path)
    if path.is_dir():
        raise error(f"{what} file {path} is a directory; give a TOML file (see {example})")
    doc = read_parsed(path, tomli.loads, tomli.TOMLDecodeError, error, missing=f"{what} file {path} does not exist",
                      bad="{path} is not valid TOML: {exc}")
    unknown = sorted(set(doc) - set(sections))
    if unknown:
        raise error(f"{path}: unknown table(s) {unknown}; a {what} file has "
                    + ", ".join(f"[{s}]" for s in sections[:-1]) + f" and [{sections[-1]}]")
    return doc


def string_table(path, name: str, table, keys, error, nonempty: bool = False) -> None:
    """A TOML table ``[name]`` of string values under the given keys only, or one ``error`` naming the problem."""
    if not isinstance(table, dict):
        raise error(f"{path}: [{name}] must be a table ({', '.join(f'{k} = ...' for k in keys)})")
    bad = sorted(set(table) - set(keys))
    if bad:
        raise error(f"{path}: unknown [{name}] key(s) {bad}; known: {list(keys)}")
    for key in keys:
        if key in table and (not isinstance(table[key], str) or (nonempty and not table[key].strip())):
            raise error(f"{path}: [{name}] {key} must be a {'non-empty ' if nonempty else ''}string, got "
                        f"{table[key]!r}")


def load_recipe(path) -> Recipe:
    import tomli

    from eqprop.learning.rundir import read_parsed

    path = Path(path)
    if str(path).strip() in ("", "."):
        raise RecipeError("--config is empty; give a recipe file such as recipes/digits.toml")
    if path.is_dir():
        raise RecipeError(f"--config {path} is a directory; give a recipe file such as recipes/digits.toml")
    doc = read_parsed(path, tomli.loads, tomli.TOMLDecodeError, RecipeError,
                      missing=f"recipe {path} does not exist; the recipes of the README are in recipes/",
                      bad="{path} is not valid TOML: {exc}")
    unknown = sorted(set(doc) - {"recipe", "train"})
    if unknown:
        raise RecipeError(f"{path}: unknown table(s) {unknown}; a recipe has [train] (TrainConfig fields) and "
                          "optionally [recipe]")
    train, meta = doc.get("train"), doc.get("recipe", {})
    if not isinstance(train, dict) or not train:
        raise RecipeError(f"{path}: no [train] table; give the run's fields there, e.g. hidden = [100]")
    string_table(path, "recipe", meta, RECIPE_KEYS, RecipeError)
    recipe = Recipe(str(path), dict(train), **{k: meta[k] for k in RECIPE_KEYS if k in meta})
    TrainConfig.from_dict(recipe.train, where=f"{path} [train]")  # unknown fields fail here, by name
    return recipe
