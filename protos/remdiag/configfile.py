"""Loads a TOML config file into a pydantic-settings model, environment variables winning.

Shared by the agent and the collector so both sides report a bad option the same way:
one line naming the option, and the CLIs exit with status 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

SettingsT = TypeVar("SettingsT", bound="LayeredSettings")


class ConfigError(Exception):
    """A config problem, already worded for the person who wrote the config."""


class LayeredSettings(BaseSettings):
    """Settings whose precedence is: environment variables, then the TOML file, then defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment overrides them.
        return (env_settings, init_settings)


def load_settings(
    model: type[SettingsT], path: Path | None, overrides: dict[str, Any] | None = None
) -> SettingsT:
    """Read `path` (optional) into `model`; `overrides` (e.g. CLI flags) beat everything."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        settings = model(**data)
        if overrides:
            settings = model.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model)) from None
    except SettingsError as exc:  # an environment variable that is not valid JSON, say
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"invalid environment variable: {exc}{cause}") from None
    return settings


def describe_validation_error(exc: ValidationError, model: type[BaseSettings]) -> str:
    """First problem as one line: `option.path: message (environment variable NAME)`."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if not error["loc"]:
        # Whole-model validators word their own option names.
        return f"invalid option {message}{more}"
    option = ".".join(str(part) for part in error["loc"])
    prefix = model.model_config.get("env_prefix", "")
    delimiter = model.model_config.get("env_nested_delimiter") or "__"
    env_name = prefix + delimiter.join(str(p) for p in error["loc"]).upper()
    return f"invalid option {option}: {message} (environment variable {env_name}){more}"
