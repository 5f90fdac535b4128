"""`ElasticSupernet`: one set of weights from which every member of a YAML space is cut (SPOS/OFA).

Where DARTS' `Supernet` holds every candidate block side by side, this one holds, for every layer
position and block kind, a single *largest* tensor per parameter; a member's parameter is a slice of
it, as in Once-for-All:

- elastic kernel: the centre ``k x k`` of the largest kernel;
- elastic expansion and width: the leading channels (input and output side); a (fused) MBConv of
  expansion 1, which has no expansion conv, has weights of its own (see slot names);
- elastic depth: a stage of depth ``d`` uses the stage's first ``d`` layer positions;
- elastic resolution: nothing to cut (the member sees its own input size).

The forward pass of a member is the plain network `build_model` makes for it (built once on the
meta device, so it holds no memory), run with `torch.func.functional_call` on the slices. So the
member that is trained inside the supernet is the same module, layer for layer, as the standalone
model `extract` returns, and the gradients of a step flow into the shared tensors through the
slices. BatchNorm running statistics are slices too; they are only a rough average over many
members, which is why a member's statistics are recalibrated before it is scored.

Slot names: the member's parameter name, with the layer's block kind after ``stages.S.J``
(different kinds at one position share nothing), and, for (fused) MBConv, whose optional parts
(expansion conv, squeeze-excitation) shift the indices of its ``nn.Sequential``, each part named
by its role (``expand``, ``dw``, ``se``, ``project``) instead of its index. An MBConv without an
expansion conv is kind ``mb1`` (``fmb1``): its depthwise conv reads the block's input where the
others' read their expanded features. Measured on mbconv and digits (sandwich, 11 epochs): 30
random members scored 30-82% (mean 60%) with weights of its own, 11-70% (mean 44%) shared.
"""
from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torchvision.ops import StochasticDepth

from search_spaces import layout as L
from search_spaces.arch import Architecture, Head, Stem
from search_spaces.blocks import make_block, make_head, make_stem
from search_spaces.builder import Network, build_model
from search_spaces.errors import NasError, SpaceError
from search_spaces.layout import LayerLayout, resolve
from search_spaces.macro import MacroSpace


@dataclass(frozen=True)
class Slot:
    """One shared tensor: its (largest) shape and how it is initialised."""

    name: str
    shape: tuple[int, ...]
    init: str  # conv | linear | ones | zeros | layer_scale | count
    buffer: bool


def _roles(layer: LayerLayout) -> list[str] | None:
    """The roles of the parts of a (fused) MBConv's ``nn.Sequential``, in order (None: other kinds)."""
    expand = layer.mid_channels != layer.in_channels
    if layer.kind == "mb":
        return [*(["expand"] if expand else []), "dw", *(["se"] if layer.se_channels else []), "project"]
    if layer.kind == "fmb":
        if not expand:
            return ["conv"]
        return ["expand", *(["se"] if layer.se_channels else []), "project"]
    return None


def _slot_kind(layer: LayerLayout) -> str:
    """The kind of weights a layer uses: its block kind, ``mb1``/``fmb1`` for a (fused) MBConv
    without an expansion conv (weights of its own: module docstring)."""
    if _roles(layer) is not None and layer.mid_channels == layer.in_channels:
        return layer.kind + "1"
    return layer.kind


def slot_name(name: str, layers: dict[tuple[int, int], LayerLayout]) -> str:
    """The shared slot of a member's parameter or buffer ``name`` (``layers``: (stage, index) -> layout)."""
    parts = name.split(".")
    if parts[0] != "stages":
        return name
    layer = layers[(int(parts[1]), int(parts[2]))]
    rest = parts[3:]
    roles = _roles(layer)
    if roles is not None and rest[0] == "block":
        rest = ["block", roles[int(rest[1])], *rest[2:]]
    return ".".join(["stages", parts[1], parts[2], _slot_kind(layer), *rest])


def layer_kinds(arch: Architecture) -> tuple[str, ...]:
    """The kind of weights each layer of a member uses, in order (kinds share no weights)."""
    return tuple(_slot_kind(layer) for layer in resolve(arch).layers)


def kind_groups(space: MacroSpace, seed: int = 0, tries: int = 64) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """Per choice that switches layers between kinds of weights (an MBConv's expansion 1 against
    its others, a stage's block type), its values grouped by the kinds they give; depth and the
    global choices never do."""
    rng = random.Random(seed)
    groups = {}
    for dim in space.dimensions():
        if len(dim.values) < 2 or dim.name in ("resolution", "width") or dim.name.endswith(".depth"):
            continue
        for _ in range(tries):  # a member in which the choice matters (it may depend on others)
            base = space.to_choices(space.sample(rng))
            if dim.active(base):
                break
        else:
            continue
        by_kinds: dict[tuple[str, ...], list[Any]] = {}
        for value in dim.values:
            member = space.from_choices(space.complete({**base, dim.name: value}, random.Random(seed)))
            by_kinds.setdefault(layer_kinds(member), []).append(value)
        if len(by_kinds) > 1:
            groups[dim.name] = tuple(tuple(values) for values in by_kinds.values())
    return groups


def largest_of_kinds(space: MacroSpace, largest: Architecture, groups: Mapping[str, tuple[tuple[Any, ...], ...]],
                     measure: Callable[[Architecture], float]) -> list[Architecture]:
    """The largest member again once per other kind of weights: the k-th (k = 1, 2, ...) moves every
    kind-switching choice of ``groups`` (`kind_groups`) k kinds on from the largest member's own, to
    the value of that kind with the largest ``measure``, choices it opens (a block type's own) at their
    largest too (for mbconv: the largest member with every stage at expansion 1). Weights that the
    largest member never uses then train every step beside full-size neighbours too."""
    kinds = max((len(g) for g in groups.values()), default=1)
    out: list[Architecture] = []
    for k in range(1, kinds):
        choices = space.to_choices(largest)
        for name, grouped in groups.items():
            if name not in choices:  # inactive here (a choice of a block type this stage left)
                continue
            own = next(i for i, g in enumerate(grouped) if choices[name] in g)
            moved = [_fill_largest(space, {**choices, name: value}, measure)
                     for value in grouped[(own + k) % len(grouped)]]
            moved = [(measure(space.from_choices(c)), c) for c in moved if c is not None]
            if moved:
                choices = max(moved, key=lambda pair: pair[0])[1]
        member = space.from_choices(choices)
        if member != largest and member not in out:
            out.append(member)
    return out


def _fill_largest(space: MacroSpace, partial: Mapping[str, Any],
                  measure: Callable[[Architecture], float]) -> dict[str, Any] | None:
    """``partial``'s choices where they are active, every other active choice (in order) at the value
    whose member (the rest filled alike) measures largest; None if the space accepts no such member."""
    choices: dict[str, Any] = {}
    for dim in space.dimensions():
        if not dim.active(choices):
            continue
        if partial.get(dim.name) in dim.values:
            choices[dim.name] = partial[dim.name]
            continue
        best = None
        for value in dim.values:
            try:
                score = measure(space.from_choices(space.complete({**partial, **choices, dim.name: value},
                                                                  random.Random(0))))
            except NasError:  # a combination the space's rules exclude
                continue
            if best is None or score > best[0]:
                best = (score, value)
        if best is None:
            return None
        choices[dim.name] = best[1]
    try:
        space.from_choices(choices)
    except NasError:
        return None
    return choices


def _layer_index(layout: L.NetworkLayout) -> dict[tuple[int, int], LayerLayout]:
    index, seen = {}, {}
    for layer in layout.layers:
        j = seen.get(layer.stage, 0)
        index[(layer.stage, j)] = layer
        seen[layer.stage] = j + 1
    return index


def _init_kind(module: nn.Module, pname: str) -> str:
    if pname in ("running_mean",):
        return "zeros"
    if pname == "running_var":
        return "ones"
    if pname == "num_batches_tracked":
        return "count"
    if pname == "layer_scale":
        return "layer_scale"
    if isinstance(module, nn.Conv2d):
        return "conv" if pname == "weight" else "zeros"
    if isinstance(module, nn.Linear):
        return "linear" if pname == "weight" else "zeros"
    return "ones" if pname == "weight" else "zeros"  # norms


def _entries(module: nn.Module, prefix: str) -> Iterator[tuple[str, tuple[int, ...], str, bool]]:
    """(name, shape, init, is_buffer) of every parameter and buffer of ``module``."""
    for mname, sub in module.named_modules():
        for pname, p in sub.named_parameters(recurse=False):
            yield ".".join(filter(None, [prefix, mname, pname])), tuple(p.shape), _init_kind(sub, pname), False
        for bname, b in sub.named_buffers(recurse=False):
            if b is not None:
                yield ".".join(filter(None, [prefix, mname, bname])), tuple(b.shape), _init_kind(sub, bname), True


def _candidate_layers(space: MacroSpace) -> Iterator[tuple[int, int, LayerLayout]]:
    """Every (stage, position, layout) a member of ``space`` can have, at every width, fed every
    input width the previous position can produce (sizes and drop path do not change weights)."""
    spec = space.spec
    size = space.base_resolution
    for width in spec.widths:
        stem = L.stem_layout(Stem(**spec.stem), size, width, spec.act)
        ins = {stem.out_channels}
        for i, stage in enumerate(spec.stages):
            units = space.unit_candidates(i)
            options = dict(units)
            for j in range(max(stage.depths)):
                name = units[0][0] if stage.granularity == "stage" else units[j][0]
                stride = stage.stride if j == 0 else 1
                outs = set()
                for option in options[name]:
                    block = space.unit_block(i, name, option, stride)
                    for cin in sorted(ins):
                        layer = L.layer_layout(block, i, cin, size, width, spec.act)
                        outs.add(layer.out_channels)
                        yield i, j, layer
                # A stage shallower than j + 1 hands on the previous position's output.
                ins = outs | (ins if j + 1 > min(stage.depths) else set())


def _layer_groups(space: MacroSpace) -> dict[tuple[int, int], dict[tuple, list[LayerLayout]]]:
    """Candidate layouts per position, grouped by the parts they have (same parameter names)."""
    groups: dict[tuple[int, int], dict[tuple, list[LayerLayout]]] = {}
    for i, j, layer in _candidate_layers(space):
        parts = (layer.kind, layer.mid_channels != layer.in_channels, bool(layer.se_channels), layer.se_hard,
                 layer.downsample, layer.residual, layer.groups)
        groups.setdefault((i, j), {}).setdefault(parts, []).append(layer)
    return groups


def _covering(groups: dict[tuple, list[LayerLayout]]) -> Iterator[LayerLayout]:
    """Per group, one layout at least as large in every dimension as each of the group's: its
    parameters have the largest shapes (shapes grow with channels, kernel and SE width)."""
    for layers in groups.values():
        yield replace(
            layers[0],
            in_channels=max(lay.in_channels for lay in layers),
            out_channels=max(lay.out_channels for lay in layers),
            mid_channels=max(lay.mid_channels for lay in layers),
            kernel=max(lay.kernel for lay in layers),
            se_channels=max(lay.se_channels for lay in layers),
        )


def _branch_end(block: nn.Module) -> str | None:
    """The weight of the last BatchNorm on a residual block's branch (not its shortcut), if any."""
    norms = [name for name, m in block.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and not name.startswith("downsample")]
    return f"{norms[-1]}.weight" if norms else None


class ElasticSupernet(nn.Module):
    """Shared weights for every member of a YAML space at ``num_classes`` outputs.

    ``zero_init`` starts every block that is residual in all members as the identity (the last
    BatchNorm of its branch scaled by 0, as BigNAS does) and the classifier at 0: a member of any
    depth then starts as a shallow network predicting the uniform distribution, instead of with
    logits of standard deviation ~5 (the 1/sqrt(classes) init made for 1000 classes, at 10), and
    the members' gradients agree early in training.
    """

    def __init__(self, space: MacroSpace, num_classes: int, cache_size: int = 64,
                 zero_init: bool = False) -> None:
        super().__init__()
        if not isinstance(space, MacroSpace):
            raise SpaceError(f"a supernet needs a YAML space; {space.name} is a {type(space).__name__}")
        self.space = space
        self.num_classes = num_classes
        self.slots: dict[str, Slot] = {}
        self._modules_cache: OrderedDict[str, tuple] = OrderedDict()
        self._cache_size = cache_size
        self._blocks: dict[object, nn.Module] = {}  # meta-device parts by layout, reused by members
        spec = space.spec
        branch_ends: dict[str, bool] = {}  # slot -> residual in every layout that uses it
        last = len(spec.stages) - 1
        top = 0
        with torch.device("meta"):
            for (i, j), group in _layer_groups(space).items():
                if i == last:
                    top = max(top, *(lay.out_channels for layers in group.values() for lay in layers))
                for layer in _covering(group):
                    block = make_block(layer)
                    for name, shape, init, buf in _entries(block, f"stages.{i}.{j}"):
                        self._grow(slot_name(name, {(i, j): layer}), shape, init, buf)
                    end = _branch_end(block)
                    if end is not None:
                        slot = slot_name(f"stages.{i}.{j}.{end}", {(i, j): layer})
                        branch_ends[slot] = branch_ends.get(slot, True) and layer.residual
            for width in spec.widths:
                stem = L.stem_layout(Stem(**spec.stem), space.base_resolution, width, spec.act)
                for name, shape, init, buf in _entries(make_stem(stem), "stem"):
                    self._grow(name, shape, init, buf)
                head = L.head_layout(Head(**spec.head), top, 1, width, spec.act)
                for name, shape, init, buf in _entries(make_head(head, num_classes), "head"):
                    self._grow(name, shape, init, buf)
        self.weights = nn.ParameterDict()
        self.stats = nn.Module()  # BatchNorm buffers, registered by slot
        for slot in self.slots.values():
            tensor = _initial(slot)
            if zero_init and (branch_ends.get(slot.name, False)
                              or (slot.name.startswith("head.") and slot.init == "linear")):
                tensor.zero_()
            if slot.buffer:
                self.stats.register_buffer(_key(slot.name), tensor)
            else:
                self.weights[_key(slot.name)] = nn.Parameter(tensor)

    def _grow(self, name: str, shape: tuple[int, ...], init: str, buffer: bool) -> None:
        old = self.slots.get(name)
        if old is not None:
            if len(old.shape) != len(shape):
                raise SpaceError(f"supernet slot {name}: rank {len(shape)} vs {len(old.shape)}")
            shape = tuple(max(a, b) for a, b in zip(old.shape, shape))
        self.slots[name] = Slot(name, shape, init, buffer)

    # -- members -------------------------------------------------------------------------------
    def _member(self, arch: Architecture) -> tuple[nn.Module, dict[str, str], dict[str, tuple[int, ...]]]:
        """The member's module (meta-device parts, shared with other members that have the same
        layer), its name -> slot map and its tensor shapes; cached by architecture."""
        key = str(arch)
        hit = self._modules_cache.get(key)
        if hit is not None:
            self._modules_cache.move_to_end(key)
            return hit
        layout = resolve(arch)
        stages: list[list[nn.Module]] = [[] for _ in arch.stages]
        for (i, j), layer in _layer_index(layout).items():
            stages[i].append(self._part((i, j), layer, make_block))
        stem = replace(layout.stem, in_size=0, out_size=0)
        head = replace(layout.head, in_size=0)
        module = Network(self._part("stem", stem, make_stem), nn.Sequential(*(nn.Sequential(*s) for s in stages)),
                         self._part("head", head, lambda h: make_head(h, self.num_classes)))
        layers = _layer_index(layout)
        state = module.state_dict(keep_vars=True)
        names = {name: slot_name(name, layers) for name in state}
        missing = [s for s in names.values() if s not in self.slots]
        if missing:
            raise SpaceError(f"architecture {key} is not a member of the supernet's space "
                             f"{self.space.name} (no shared weights for {missing[0]})")
        entry = (module, names, {n: tuple(t.shape) for n, t in state.items()})
        self._modules_cache[key] = entry
        if len(self._modules_cache) > self._cache_size:
            self._modules_cache.popitem(last=False)
        return entry

    def _part(self, where: object, layout: Any, make: Callable[[Any], nn.Module]) -> nn.Module:
        """The block, stem or head at ``where`` for ``layout``, built once on the meta device (it
        holds no weights of its own: every call supplies them). One object per position, so that
        no two positions of a member share a module."""
        if isinstance(layout, LayerLayout):
            layout = replace(layout, in_size=0, out_size=0)
        part = self._blocks.get((where, layout))
        if part is None:
            with torch.device("meta"):
                part = self._blocks[(where, layout)] = make(layout)
        return part

    def tensors(self, arch: Architecture) -> dict[str, torch.Tensor]:
        """The member's parameters and buffers, by its own names: views into the shared tensors."""
        _, names, shapes = self._member(arch)
        return {name: _cut(self._tensor(slot), shapes[name]) for name, slot in names.items()}

    def _tensor(self, slot: str) -> torch.Tensor:
        key = _key(slot)
        return self.stats.get_buffer(key) if self.slots[slot].buffer else self.weights[key]

    def forward(self, x: torch.Tensor, arch: Architecture, regularize: bool = True) -> torch.Tensor:
        """The member ``arch``'s output, computed with the shared weights (gradients reach them).

        ``regularize=False`` runs it in training without dropout and stochastic depth (BigNAS
        regularises only the largest member: the small ones underfit rather than overfit).
        """
        module, _, _ = self._member(arch)
        module.train(self.training)
        if self.training and not regularize:
            for m in module.modules():
                if isinstance(m, (nn.Dropout, StochasticDepth)):
                    m.eval()
        return functional_call(module, self.tensors(arch), (x,), strict=True)

    @torch.no_grad()
    def recalibrated(self, arch: Architecture, batches: Iterable[torch.Tensor],
                     memory_format: torch.memory_format = torch.contiguous_format) -> dict[str, torch.Tensor]:
        """The member's tensors with BatchNorm statistics of its own: reset, then a plain average
        over ``batches`` (the shared statistics are left as they are). Only the norms run in
        training mode: stochastic depth and dropout stay off, so the statistics are those of the
        network that is scored, and the same for the same batches. Conv weights come back copied
        into ``memory_format`` (``torch.channels_last`` to run NHWC batches fast on CPU)."""
        module, names, shapes = self._member(arch)
        tensors = {}
        for name, tensor in self.tensors(arch).items():
            slot = self.slots[names[name]]
            tensors[name] = _initial(replace(slot, shape=shapes[name])).to(tensor.device) if slot.buffer \
                else tensor.detach()
            if tensors[name].ndim == 4:
                tensors[name] = tensors[name].contiguous(memory_format=memory_format)
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        try:
            for m in norms:
                m.momentum = None  # cumulative average
            module.eval()
            for m in norms:
                m.train()
            for images in batches:
                functional_call(module, tensors, (images,), strict=True)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
        return tensors

    def bind(self, arch: Architecture, tensors: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """The member as a module running on ``tensors`` (default: the shared weights)."""
        return _Bound(self, arch, tensors)

    def extract(self, arch: Architecture) -> Network:
        """A standalone `build_model` network with the member's weights (copies, not views)."""
        model = build_model(arch, self.num_classes)
        with torch.no_grad():
            model.load_state_dict({k: v.detach().clone() for k, v in self.tensors(arch).items()})
        return model.to(next(iter(self.weights.values())).device)


class _Bound(nn.Module):
    """A member running on given tensors (no copy, no build): for scoring many members quickly."""

    def __init__(self, supernet: ElasticSupernet, arch: Architecture,
                 tensors: dict[str, torch.Tensor] | None) -> None:
        super().__init__()
        self._supernet = [supernet]  # not a submodule: eval() here must not flip the supernet
        self.arch = arch
        self.tensors = tensors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        supernet = self._supernet[0]
        module, _, _ = supernet._member(self.arch)
        module.train(self.training)
        tensors = self.tensors if self.tensors is not None else supernet.tensors(self.arch)
        return functional_call(module, tensors, (x,), strict=True)


def _key(slot: str) -> str:
    return slot.replace(".", "__")


def _cut(full: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The leading ``shape`` of ``full``, except a conv kernel's spatial dims: their centre."""
    if tuple(full.shape) == shape:
        return full
    index = []
    for d, (have, want) in enumerate(zip(full.shape, shape)):
        start = (have - want) // 2 if full.ndim == 4 and d >= 2 else 0
        index.append(slice(start, start + want))
    return full[tuple(index)]


def _initial(slot: Slot) -> torch.Tensor:
    """As `build_model` initialises (torchvision's scheme), at the slot's largest shape."""
    if slot.init == "count":
        return torch.zeros(slot.shape, dtype=torch.long)
    tensor = torch.empty(slot.shape)
    if slot.init == "conv":
        nn.init.kaiming_normal_(tensor, mode="fan_out")
    elif slot.init == "linear":
        bound = 1.0 / slot.shape[0] ** 0.5
        nn.init.uniform_(tensor, -bound, bound)
    elif slot.init == "ones":
        nn.init.ones_(tensor)
    elif slot.init == "layer_scale":
        nn.init.constant_(tensor, 1e-6)
    else:
        nn.init.zeros_(tensor)
    return tensor
