"""`Architecture`: a frozen value naming one CNN, and its canonical string form.

The string reads like timm's block strings, one ``:``-separated part per piece of the network::

    mbconv@224_silu_sd0.2:stem_k3_s2_c32:mb_k3_e1_c16_se0.25:mb_k3_e6_c24_s2_se0.25_r2:...:head_c1280_d0.2

- header ``NAME@RES`` then optional ``_ACT`` (default activation), ``_wW`` / ``_dD`` (width / depth
  multipliers applied by the builder), ``_sdP`` (stochastic-depth rate of the last block);
- ``stem_k{kernel}_s{stride}_c{channels}`` plus ``_pool`` (3x3/2 max-pool, ResNet) or the prefix
  ``stem_patch`` (conv with bias + LayerNorm, ConvNeXt), and an optional activation;
- one part per stage, made of ``,``-separated block groups ``KIND_k_e_c_s_g_se_ACT_r``; a group of
  ``r`` repeats has stride ``s`` on its first layer only, as in timm and torchvision; a kind takes
  only the tokens it builds (its record's ``uses``: ``search_spaces/kinds/``) and refuses the others,
  so every token written is built;
- ``head_c{channels}[_f{hidden}]_d{dropout}`` (1x1 conv head), ``head_pool`` (ResNet), ``head_norm``
  (ConvNeXt: LayerNorm before the classifier).

Channels in the string are the unscaled ones; ``width`` and ``depth`` say how the builder scales them,
so an EfficientNet-B2 is B0's string with ``_w1.1_d1.2`` and resolution 260.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import yaml

from search_spaces.errors import ArchitectureError
from search_spaces.kinds import block_kind, kind_names
from search_spaces.kinds.record import FIELDS

BLOCK_KINDS = kind_names()  # each kind's grammar, options, layout rule and cost: search_spaces/kinds/
ACTIVATIONS = ("relu", "relu6", "silu", "hswish", "gelu")
HEAD_KINDS = ("conv", "pool", "norm")
STEM_KINDS = ("conv", "patch")


# The value a Block field takes where its kind does not read it.
_NEUTRAL: dict[str, Any] = {"kernel": 1, "expansion": 1.0, "se": 0.0, "groups": 1, "act": None}
_DEFAULT_KERNEL = 3  # what ``kernel=0`` (not given) becomes on a kind that reads a kernel
# How block fields are written in a string (a refusal lists what a kind accepts) and named in words.
_SYNTAX = {"kernel": "k<kernel>", "expansion": "e<expansion>", "channels": "c<channels>",
           "stride": "s<stride>", "groups": "g<groups>", "se": "se<ratio>, hse<ratio>",
           "act": "/".join(ACTIVATIONS), "repeats": "r<repeats>"}
_PROSE = {"kernel": "a kernel", "expansion": "an expansion", "se": "squeeze-excitation",
          "groups": "groups", "act": "an activation"}
_PREFIX = {"kernel": "k", "expansion": "e", "groups": "g", "se": "se"}  # numeric optional field -> token key
_OPTIONAL_TOKENS = {**{key: name for name, key in _PREFIX.items()}, "hse": "se"}  # token key -> field

_TOKEN = re.compile(r"^([a-z]+?)(-?[0-9][0-9.e+-]*)$")


def format_number(value: float) -> str:
    """Shortest text that reads back to the same number: 6.0 -> '6', 0.25 -> '0.25'."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ArchitectureError(f"{where}: {text!r} is not a number") from None


def _int(text: str, where: str) -> int:
    value = _number(text, where)
    if not value.is_integer():
        raise ArchitectureError(f"{where}: {text!r} must be a whole number")
    return int(value)


def _accepted(kind: str) -> str:
    """The tokens a block of ``kind`` accepts, in the order the canonical string writes them."""
    uses = block_kind(kind).uses
    order = ("kernel", "expansion", "channels", "stride", "groups", "se", "act", "repeats")
    return ", ".join(_SYNTAX[f] for f in order if f in uses or f not in FIELDS)


def _not_used(where: str, token: str, name: str, kind: str) -> ArchitectureError:
    """The refusal of a token that sets a field ``kind`` does not build (it would be dropped)."""
    return ArchitectureError(
        f"{where}: {token!r} sets {_PROSE[name]}, which {kind!r} blocks do not have; "
        f"{kind!r} accepts {_accepted(kind)}"
    )


def _check_act(act: str | None, where: str) -> None:
    if act is not None and act not in ACTIVATIONS:
        raise ArchitectureError(
            f"{where}: unknown activation {act!r}; allowed: {', '.join(ACTIVATIONS)}"
        )


def _field_token(name: str, value: Any, se_hard: bool = False) -> str:
    """The string token of one optional field's value (``kernel=5`` -> ``k5``)."""
    if name == "act":
        return str(value)
    text = format_number(value) if isinstance(value, (int, float)) else str(value)
    return ("hse" if name == "se" and se_hard else _PREFIX[name]) + text


@dataclass(frozen=True)
class Block:
    """A group of ``repeats`` identical layers; only the first has ``stride``."""

    kind: str
    channels: int
    # 0: not given, so that a kernel given to a kind without one is refused even at 3, the default
    # of the kinds that read one; it becomes 3 there, and 1 (neutral) elsewhere.
    kernel: int = 0
    stride: int = 1
    expansion: float = 1.0
    se: float = 0.0
    se_hard: bool = False  # MobileNetV3 SE: on expanded channels, ReLU, hard-sigmoid gate
    groups: int = 1
    act: str | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        where = f"block {self.kind!r}"
        if self.kind not in BLOCK_KINDS:
            raise ArchitectureError(
                f"unknown block type {self.kind!r}; allowed: {', '.join(BLOCK_KINDS)}"
            )
        uses = block_kind(self.kind).uses
        if self.kernel == 0:
            object.__setattr__(self, "kernel", _DEFAULT_KERNEL if "kernel" in uses else _NEUTRAL["kernel"])
        # A field the kind does not build is refused where it was given (anything but its neutral
        # value, which is also what a dict or ``replace`` of a block carries): dropping it would
        # print and build another network than the one the user wrote.
        for name in FIELDS:
            value = getattr(self, name)
            if name not in uses and value != _NEUTRAL[name]:
                raise _not_used(where, _field_token(name, value, self.se_hard), name, self.kind)
        if self.se == 0:
            object.__setattr__(self, "se_hard", False)
        object.__setattr__(self, "expansion", float(self.expansion))
        object.__setattr__(self, "se", float(self.se))
        if int(self.channels) != self.channels or self.channels < 1:
            raise ArchitectureError(f"{where}: channels must be a positive integer, got {self.channels}")
        if self.kernel < 1 or ("kernel" in uses and self.kernel % 2 == 0):
            raise ArchitectureError(f"{where}: kernel must be a positive odd integer, got {self.kernel}")
        if self.stride not in (1, 2):
            raise ArchitectureError(f"{where}: stride must be 1 or 2, got {self.stride}")
        if self.expansion <= 0:
            raise ArchitectureError(f"{where}: expansion must be positive, got {self.expansion}")
        if not 0 <= self.se < 1:
            raise ArchitectureError(f"{where}: se ratio must be in [0, 1), got {self.se}")
        if self.groups < 1:
            raise ArchitectureError(f"{where}: groups must be >= 1, got {self.groups}")
        if self.repeats < 1:
            raise ArchitectureError(f"{where}: repeats must be >= 1, got {self.repeats}")
        _check_act(self.act, where)
        problem = block_kind(self.kind).check(self)
        if problem:
            raise ArchitectureError(f"{where}: {problem}")
        # Not a field (asdict, eq, repr skip it); a str caches its hash, which memos on blocks reuse.
        object.__setattr__(self, "_text", self._format())

    def __hash__(self) -> int:
        return hash(self._text)  # type: ignore[attr-defined]  (equal blocks have equal strings)

    def layer(self, index: int) -> Block:
        """The single layer at ``index`` inside this group (stride only on the first)."""
        stride = self.stride if index == 0 else 1
        if self.repeats == 1 and stride == self.stride:
            return self
        return replace(self, repeats=1, stride=stride)

    def shape_key(self) -> tuple:
        """What makes two layers the same layer, stride and repeats aside."""
        return (self.kind, self.channels, self.kernel, self.expansion, self.se, self.se_hard, self.groups,
                self.act)

    def __str__(self) -> str:
        return self._text  # type: ignore[attr-defined]

    def _format(self) -> str:
        parts, uses = [self.kind], block_kind(self.kind).uses
        if "kernel" in uses:
            parts.append(f"k{self.kernel}")
        if "expansion" in uses:
            parts.append(f"e{format_number(self.expansion)}")
        parts.append(f"c{self.channels}")
        if self.stride != 1:
            parts.append(f"s{self.stride}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.se:
            parts.append(f"{'hse' if self.se_hard else 'se'}{format_number(self.se)}")
        if self.act:
            parts.append(self.act)
        if self.repeats != 1:
            parts.append(f"r{self.repeats}")
        return "_".join(parts)

    @classmethod
    def parse(cls, text: str) -> Block:
        tokens = text.strip().split("_")
        kind = tokens[0]
        if kind not in BLOCK_KINDS:
            raise ArchitectureError(
                f"unknown block type {kind!r} in {text!r}; allowed: {', '.join(BLOCK_KINDS)}"
            )
        fields: dict[str, Any] = {"kind": kind}
        uses, where = block_kind(kind).uses, f"block {text!r}"
        for token in tokens[1:]:
            match = _TOKEN.match(token)
            key, value = (match.group(1), match.group(2)) if match else (token, "")
            # A written token is refused even at its neutral value (basic_e1): it still says the
            # user meant something the kind does not build.
            name = "act" if token in ACTIVATIONS else _OPTIONAL_TOKENS.get(key)
            if name is not None and name not in uses:
                raise _not_used(where, token, name, kind)
            if token in ACTIVATIONS:
                fields["act"] = token
            elif key == "k":
                fields["kernel"] = _int(value, where)
                if fields["kernel"] == 0:  # 0 is the constructor's "not given": never read it as k3
                    raise ArchitectureError(f"{where}: kernel must be a positive odd integer, got 0")
            elif key == "e":
                fields["expansion"] = _number(value, where)
            elif key == "c":
                fields["channels"] = _int(value, where)
            elif key == "s":
                fields["stride"] = _int(value, where)
            elif key == "g":
                fields["groups"] = _int(value, where)
            elif key in ("se", "hse"):
                fields["se"] = _number(value, where)
                fields["se_hard"] = key == "hse"
            elif key == "r":
                fields["repeats"] = _int(value, where)
            else:
                raise ArchitectureError(
                    f"unknown token {token!r} in block {text!r}; {kind!r} accepts {_accepted(kind)}"
                )
        if "channels" not in fields:
            raise ArchitectureError(f"block {text!r}: missing channels token c<N>")
        return cls(**fields)


@dataclass(frozen=True)
class Stem:
    """First layer: ``conv`` (conv-BN-act, optional ResNet max-pool) or ``patch`` (ConvNeXt)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    kind: str = "conv"
    pool: bool = False
    act: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in STEM_KINDS:
            raise ArchitectureError(
                f"unknown stem type {self.kind!r}; allowed: {', '.join(STEM_KINDS)}"
            )
        if self.channels < 1 or self.kernel < 1 or self.stride < 1:
            raise ArchitectureError("stem: channels, kernel and stride must be positive")
        if self.kind == "patch":
            object.__setattr__(self, "pool", False)
            object.__setattr__(self, "act", None)
        _check_act(self.act, "stem")

    def __str__(self) -> str:
        parts = ["stem"] + (["patch"] if self.kind == "patch" else [])
        parts += [f"k{self.kernel}", f"s{self.stride}", f"c{self.channels}"]
        if self.pool:
            parts.append("pool")
        if self.act:
            parts.append(self.act)
        return "_".join(parts)

    @classmethod
    def parse(cls, text: str) -> Stem:
        tokens = text.split("_")
        if tokens[0] != "stem":
            raise ArchitectureError(f"expected the stem (stem_k3_s2_c32...), got {text!r}")
        fields: dict[str, Any] = {}
        for token in tokens[1:]:
            if token == "patch":
                fields["kind"] = "patch"
            elif token == "pool":
                fields["pool"] = True
            elif token in ACTIVATIONS:
                fields["act"] = token
            else:
                match = _TOKEN.match(token)
                key = match.group(1) if match else token
                names = {"k": "kernel", "s": "stride", "c": "channels"}
                if key not in names:
                    raise ArchitectureError(
                        f"unknown token {token!r} in stem {text!r}; allowed: k<kernel>, s<stride>, "
                        f"c<channels>, patch, pool, {', '.join(ACTIVATIONS)}"
                    )
                fields[names[key]] = _int(match.group(2), f"stem {text!r}")
        if "channels" not in fields:
            raise ArchitectureError(f"stem {text!r}: missing channels token c<N>")
        return cls(**fields)


@dataclass(frozen=True)
class Head:
    """Classifier: ``conv`` (1x1 conv-BN-act, pool, optional hidden linear), ``pool`` or ``norm``."""

    kind: str = "conv"
    channels: int = 0
    hidden: int = 0
    dropout: float = 0.0
    act: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ArchitectureError(
                f"unknown head type {self.kind!r}; allowed: {', '.join(HEAD_KINDS)}"
            )
        if self.kind == "conv" and self.channels < 1:
            raise ArchitectureError("head: a conv head needs channels c<N> >= 1")
        if self.kind != "conv":
            object.__setattr__(self, "channels", 0)
        if self.hidden < 0:
            raise ArchitectureError(f"head: hidden features must be >= 0, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ArchitectureError(f"head: dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "dropout", float(self.dropout))
        _check_act(self.act, "head")

    def __str__(self) -> str:
        parts = ["head"]
        if self.kind != "conv":
            parts.append(self.kind)
        else:
            parts.append(f"c{self.channels}")
        if self.hidden:
            parts.append(f"f{self.hidden}")
        if self.dropout:
            parts.append(f"d{format_number(self.dropout)}")
        if self.act:
            parts.append(self.act)
        return "_".join(parts)

    @classmethod
    def parse(cls, text: str) -> Head:
        tokens = text.split("_")
        if tokens[0] != "head":
            raise ArchitectureError(f"expected the head (head_c1280...), got {text!r}")
        fields: dict[str, Any] = {}
        for token in tokens[1:]:
            if token in HEAD_KINDS:
                fields["kind"] = token
            elif token in ACTIVATIONS:
                fields["act"] = token
            else:
                match = _TOKEN.match(token)
                key = match.group(1) if match else token
                where = f"head {text!r}"
                if key == "c":
                    fields["channels"] = _int(match.group(2), where)
                elif key == "f":
                    fields["hidden"] = _int(match.group(2), where)
                elif key == "d":
                    fields["dropout"] = _number(match.group(2), where)
                else:
                    raise ArchitectureError(
                        f"unknown token {token!r} in head {text!r}; allowed: c<channels>, "
                        f"f<hidden>, d<dropout>, {', '.join(HEAD_KINDS)}, {', '.join(ACTIVATIONS)}"
                    )
        return cls(**fields)


def _merge_groups(blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    """Merge adjacent groups that describe the same layers, so one network has one value."""
    runs: list[list] = []  # [first block, total repeats]
    for block in blocks:
        if runs and block.stride == 1 and block.shape_key() == runs[-1][0].shape_key():
            runs[-1][1] += block.repeats
        else:
            runs.append([block, block.repeats])
    return tuple(first if first.repeats == total else _repeated(first, total) for first, total in runs)


@lru_cache(maxsize=1 << 14)
def _repeated(block: Block, repeats: int) -> Block:
    """``block`` with ``repeats`` layers, one object per group (memos on blocks match by identity)."""
    return replace(block, repeats=repeats)


@dataclass(frozen=True)
class Architecture:
    """One CNN: stem, stages of block groups, head, resolution and the multipliers to apply."""

    stem: Stem
    stages: tuple[tuple[Block, ...], ...]
    head: Head
    resolution: int = 224
    act: str = "relu"
    width: float = 1.0
    depth: float = 1.0
    drop_path: float = 0.0
    space: str = "custom"
    _text: str = field(default="", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        stages = tuple(_merge_groups(tuple(stage)) for stage in self.stages)
        if not stages or any(not stage for stage in stages):
            raise ArchitectureError("architecture: needs at least one stage, each with a block")
        object.__setattr__(self, "stages", stages)
        for name in ("width", "depth", "drop_path"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.space):
            raise ArchitectureError(
                f"architecture: space name {self.space!r} may use letters, digits, '_', '.', '-'"
            )
        if self.resolution < 8:
            raise ArchitectureError(f"architecture: resolution must be >= 8, got {self.resolution}")
        if self.width <= 0 or self.depth <= 0:
            raise ArchitectureError("architecture: width and depth multipliers must be positive")
        if not 0 <= self.drop_path < 1:
            raise ArchitectureError(f"architecture: drop_path must be in [0, 1), got {self.drop_path}")
        if self.act not in ACTIVATIONS:
            raise ArchitectureError(
                f"architecture: unknown activation {self.act!r}; allowed: {', '.join(ACTIVATIONS)}"
            )
        object.__setattr__(self, "_text", self._format())

    # -- string form -------------------------------------------------------------------------
    def _format(self) -> str:
        header = [f"{self.space}@{self.resolution}", self.act]
        if self.width != 1:
            header.append(f"w{format_number(self.width)}")
        if self.depth != 1:
            header.append(f"d{format_number(self.depth)}")
        if self.drop_path:
            header.append(f"sd{format_number(self.drop_path)}")
        parts = ["_".join(header), str(self.stem)]
        parts += [",".join(str(b) for b in stage) for stage in self.stages]
        parts.append(str(self.head))
        return ":".join(parts)

    def __str__(self) -> str:
        return self._text

    def __hash__(self) -> int:
        # the canonical string is a function of every field, and str caches its own hash: memo
        # tables keyed on architectures (layouts, latency keys) cost one lookup, not a deep walk
        return hash(self._text)

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Read the canonical string form (see the module docstring)."""
        text = text.strip()
        parts = text.split(":")
        if len(parts) < 4 or "@" not in parts[0]:
            raise ArchitectureError(
                f"malformed architecture string {text[:80]!r}: expected "
                "'SPACE@RES_ACT:stem_...:STAGE:...:head_...'"
            )
        space, _, rest = parts[0].partition("@")
        header = rest.split("_")
        fields: dict[str, Any] = {"space": space}
        fields["resolution"] = _int(header[0], f"architecture header {parts[0]!r}")
        for token in header[1:]:
            if token in ACTIVATIONS:
                fields["act"] = token
                continue
            match = _TOKEN.match(token)
            key = match.group(1) if match else token
            names = {"w": "width", "d": "depth", "sd": "drop_path"}
            if key not in names:
                raise ArchitectureError(
                    f"unknown token {token!r} in header {parts[0]!r}; allowed: w<width>, "
                    f"d<depth>, sd<drop_path>, {', '.join(ACTIVATIONS)}"
                )
            fields[names[key]] = _number(match.group(2), f"header {parts[0]!r}")
        stem = Stem.parse(parts[1])
        head = Head.parse(parts[-1])
        stages = tuple(
            tuple(Block.parse(group) for group in stage.split(",")) for stage in parts[2:-1]
        )
        return cls(stem=stem, stages=stages, head=head, **fields)

    # -- dict / JSON / YAML form -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (JSON and YAML safe), as Once-for-All keeps architectures."""
        return {
            "space": self.space,
            "resolution": self.resolution,
            "act": self.act,
            "width": self.width,
            "depth": self.depth,
            "drop_path": self.drop_path,
            "stem": asdict(self.stem),
            "stages": [[asdict(b) for b in stage] for stage in self.stages],
            "head": asdict(self.head),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        try:
            fields = {k: v for k, v in data.items() if k not in ("stem", "stages", "head", "arch")}
            return cls(
                stem=Stem(**data["stem"]),
                stages=tuple(tuple(Block(**b) for b in stage) for stage in data["stages"]),
                head=Head(**data["head"]),
                **fields,
            )
        except (KeyError, TypeError) as exc:
            raise ArchitectureError(f"malformed architecture dict: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Architecture:
        data = yaml.safe_load(text)
        if isinstance(data, str):
            return cls.parse(data)
        if isinstance(data, dict) and set(data) == {"arch"}:
            return cls.parse(str(data["arch"]))
        if not isinstance(data, dict):
            raise ArchitectureError("architecture YAML must be a mapping or an architecture string")
        return cls.from_dict(data)

    # -- conveniences ------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Architecture:
        return replace(self, **changes)

    @property
    def num_layers(self) -> int:
        """Layers before depth scaling."""
        return sum(b.repeats for stage in self.stages for b in stage)
