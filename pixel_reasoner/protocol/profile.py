"""A protocol profile: everything about how the model is told about, calls, and sees visual operations.

Profiles are data (see `profiles.py`): tool names and schemas, the coordinate system of boxes, where
observations go (a `user` turn in the released Pixel-Reasoner data, a Hermes `tool` turn in Qwen's format),
their texts, the system prompt and the guideline appended to questions. Code never branches on a profile's name.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Sequence

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ops import VisualOperation, get_operation, load_operation_modules
from pixel_reasoner.protocol.chatml import QWEN2_5_VL_SPECIAL_TOKENS

NO_TOOLS_GUIDELINES = "\n\nPlease think step by step, and put your final answer within \\boxed{}."  # official `notool`
NO_TOOLS_SUFFIX = "-no-tools"


@dataclass(frozen=True)
class ToolBinding:
    """Exposes a registered operation under a tool name, with its settings, schema and observation text."""

    tool_name: str
    operation: str
    settings: Any = None  # None: the operation's default settings
    schema: dict | None = None  # exact schema shown to the model; None: the operation builds it from settings
    observation: str | None = None  # success text template; None: the operation's default

    def resolve(self) -> "ToolBinding":
        op = get_operation(self.operation)
        settings = self.settings if self.settings is not None else op.settings_class()
        if not isinstance(settings, op.settings_class):
            raise ConfigError(f"tool {self.tool_name!r}: settings must be {op.settings_class.__name__}, "
                              f"got {type(settings).__name__}")
        return dataclasses.replace(self, settings=settings,
                                   schema=self.schema or op.schema(self.tool_name, settings),
                                   observation=self.observation or op.observation_template)

    @property
    def op(self) -> VisualOperation:
        return get_operation(self.operation)


@dataclass(frozen=True)
class ProtocolProfile:
    name: str
    description: str
    tools: tuple[ToolBinding, ...]
    observation_role: str  # "user": plain user turn; "tool": Hermes tool turn (rendered inside <tool_response>)
    error_template: str  # observation text of a failed operation; {message}
    system_prompt: str = "You are a helpful assistant."
    guidelines: str = ""  # appended to every question
    choices_header: str = "\nchoices:\n"
    choice_format: str = "{letter}: {text}"
    # special tokens of the model's tokenizer: model text quoted in an observation never contains them verbatim
    reserved_tokens: tuple[str, ...] = QWEN2_5_VL_SPECIAL_TOKENS

    def __post_init__(self) -> None:
        if self.observation_role not in ("user", "tool"):
            raise ConfigError(f"profile {self.name!r}: observation_role must be 'user' or 'tool'")
        resolved = tuple(t.resolve() for t in self.tools)
        names = [t.tool_name for t in resolved]
        if len(set(names)) != len(names):
            raise ConfigError(f"profile {self.name!r} exposes a tool name twice: {names}")
        object.__setattr__(self, "tools", resolved)

    def uncovered_tokens(self, special_tokens: Sequence[str]) -> list[str]:
        """The tokenizer's special tokens missing from `reserved_tokens` (they would pass into observations)."""
        return sorted(set(special_tokens) - set(self.reserved_tokens))

    def binding(self, tool_name: str) -> ToolBinding | None:
        return next((t for t in self.tools if t.tool_name == tool_name), None)

    def tool_schemas(self) -> list[dict]:
        return [t.schema for t in self.tools]  # type: ignore[misc]

    def pixel_coordinates(self) -> bool:
        """Whether a tool takes boxes in pixels of the image as shown: their meaning then depends on the pixel
        budgets, so data made under other budgets points elsewhere."""
        return any(getattr(t.settings, "coordinates", None) == "pixels" for t in self.tools)

    def tool_names(self) -> dict[str, str]:
        """Operation name -> tool name, for messages that point the model to another tool."""
        return {t.operation: t.tool_name for t in self.tools}

    def with_tools(self, extra: Sequence[ToolBinding], name: str | None = None) -> "ProtocolProfile":
        return dataclasses.replace(self, name=name or self.name, tools=self.tools + tuple(extra))

    def with_extra_operations(self, operations: Sequence[str], modules: Sequence[str] = ()) -> "ProtocolProfile":
        """This profile plus registered operations exposed under their own names with default settings.

        `modules` (module names or .py file paths) are imported first so their operations register themselves.
        """
        load_operation_modules(modules)
        return self.with_tools([ToolBinding(op, op) for op in operations])

    def with_operation_modules(self, modules: Sequence[str], name: str | None = None) -> "ProtocolProfile":
        """This profile plus every operation defined in `modules` (module names or .py file paths), optionally
        renamed (register it with `register_profile` to refer to it by name from configs)."""
        operations = load_operation_modules(modules)
        if not operations and modules:
            raise ConfigError(f"{list(modules)} define no operation: decorate a VisualOperation subclass with "
                              "@register_operation")
        have = {t.tool_name for t in self.tools}
        return self.with_tools([ToolBinding(op, op) for op in operations if op not in have], name=name)

    def without_tools(self) -> "ProtocolProfile":
        """This profile with no tools offered: no tools block in the system prompt and the official text-only
        guideline (`NO_TOOLS_GUIDELINES`). What `eval run --no-tools` shows the model, and the profile of SFT rows
        that teach it to answer from its input alone (registered as `<name>-no-tools`)."""
        return dataclasses.replace(self, name=self.name + NO_TOOLS_SUFFIX, tools=(), guidelines=NO_TOOLS_GUIDELINES,
                                   description=f"{self.description} Tools disabled.")

    def format_question(self, question: str, choices: Sequence[str] | None = None) -> str:
        """The user text: question, lettered choices (if any), then the profile's guidelines."""
        text = question.rstrip()
        if choices:
            lines = [self.choice_format.format(letter=chr(ord("A") + i), text=c) for i, c in enumerate(choices)]
            text += self.choices_header + "\n".join(lines)
        return text + self.guidelines

    def summary(self) -> dict:
        return {"name": self.name, "observation_role": self.observation_role,
                "tools": {t.tool_name: {"operation": t.operation, "settings": dataclasses.asdict(t.settings)}
                          for t in self.tools}}


_PROFILES: dict[str, ProtocolProfile] = {}
OPERATION_MODULES_ENV = "PIXEL_REASONER_OPERATION_MODULES"
_env_modules_loaded = False


def load_env_operation_modules() -> None:
    """Import the operation files named in $PIXEL_REASONER_OPERATION_MODULES (module names or .py paths, separated
    by os.pathsep), once per process, before a profile is looked up by name. An operation's file registers its
    operation and, at its bottom, a profile that exposes it (`qwen+rotate` in examples/ops/rotate_image.py), so every
    command that takes a profile *name* (eval, synthesis, SFT, their worker processes) can use it unchanged."""
    global _env_modules_loaded
    if _env_modules_loaded:
        return
    _env_modules_loaded = True  # first: a module that looks up a profile while it is imported must not recurse
    modules = [m.strip() for m in os.environ.get(OPERATION_MODULES_ENV, "").split(os.pathsep) if m.strip()]
    if modules:
        load_operation_modules(modules)


def register_profile(profile: ProtocolProfile) -> ProtocolProfile:
    _PROFILES[profile.name] = profile
    return profile


def get_profile(name: "str | ProtocolProfile") -> ProtocolProfile:
    if isinstance(name, ProtocolProfile):
        return name
    if name not in _PROFILES:
        load_env_operation_modules()
    try:
        return _PROFILES[name]
    except KeyError:
        hint = "" if os.environ.get(OPERATION_MODULES_ENV) else \
            f" (a profile defined in an operation's file: name the file in ${OPERATION_MODULES_ENV})"
        raise ConfigError(f"unknown protocol profile {name!r}; choose one of {sorted(_PROFILES)}{hint}") from None


def profile_names() -> list[str]:
    load_env_operation_modules()
    return sorted(_PROFILES)
