"""One-shot NAS: train an `ElasticSupernet` once, then score members with its shared weights.

Training is single-path: every step trains whole members cut from the shared weights, their
gradients summed into one optimiser step. ``sampling=sandwich`` (the default) is the rule of
BigNAS/OFA: the largest, the smallest and ``random_subnets`` random members. ``sampling=fair``
trains the largest member and ``random_subnets`` random ones in which every choice between kinds
of weights that share nothing (an MBConv's expansion 1 or not, a stage's block type) takes each
kind equally often. ``sampling=uniform`` trains one random member (SPOS). With
``distill=true`` (in-place distillation) the other members learn from the largest member's
predictions on the same batch instead of the labels. As BigNAS, residual blocks start as the
identity and the classifier at 0 (``zero_init``), and only the largest member is trained with
dropout and stochastic depth (``regularize=largest``). ``shrink=progressive`` orders the training as
Once-for-All's progressive shrinking: the largest member alone first, then elastic kernels, depths and
the rest, one phase each (`SupernetConfig.phase`). How well each
sampling rule ranks members, and why, is measured in docs/oneshot.md. Each member sees the
batch at its own resolution (scaled like the proxy evaluator's, so that ``resolution=32`` trains the space's
base resolution at 32 px). A checkpoint is written after every epoch (atomically), and a
resumed training continues from the last one with the same sampled members and batches as an
uninterrupted one.

Data parallel: when a ``torch.distributed`` process group is up (``nas supernet train workers=N``
starts one through Ray Train; torchrun works too), every step's members and global batch are the
same on all ranks and each rank takes its share of the batch. The shared weights are wrapped in
``DistributedDataParallel`` with ``find_unused_parameters`` (a step's members use only some slots);
the members before the last run under ``no_sync``, so the gradients of all of them are averaged
over the ranks once per step. Rank 0 scores, checkpoints and resumes (its checkpoint is broadcast).

Scoring (`SupernetEvaluator`, ``evaluator=supernet evaluator.ckpt=PATH``): cut the member's
weights out (`ElasticSupernet.extract`), recalibrate its BatchNorm statistics on a few training
batches (the shared running averages belong to no member in particular), and measure validation
accuracy; ``finetune_steps`` optionally trains the extracted member a little first.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from evaluators.base import DEFAULT_DATA, EvaluationFailed, Evaluator, Reporter
from evaluators.data import dataset_from_options
from evaluators.devices import resolve_device
from evaluators.proxy import require_architectures, scaled_resolution
from evaluators.supernet_config import OPENS, SupernetConfig, supernet_defaults
from evaluators.threads import intra_op_threads
from evaluators.training import (
    TrainConfig,
    autocast,
    evaluate,
    fit,
    make_optimizer,
    make_scheduler,
)
from search_spaces import load_space
from search_spaces.arch import Architecture
from search_spaces.checks import check_int
from search_spaces.cost import cost
from search_spaces.elastic import ElasticSupernet, kind_groups, largest_of_kinds
from search_spaces.errors import ConfigError, NasError
from search_spaces.macro import extreme_member

log = logging.getLogger(__name__)

FORMAT = "nas-supernet/2"  # 2: expansion-1 MBConvs have weights of their own
TAUGHT = ("fair", "sandwich")  # the samplings whose first member is the largest, the others' teacher
CHECKPOINT = "supernet.pt"
GLOBAL = ("resolution", "width")  # choices that change every layer's input


def elastic_in(dimension: str, phase: str) -> bool:
    """Whether a choice (a space's dimension name: ``resolution``, ``s3.kernel``, ...) varies in a
    phase of progressive shrinking: resolution always, then kernels, then depths, then the rest."""
    if phase == "all":
        return True
    return dimension == "resolution" or dimension.rsplit(".", 1)[-1] in OPENS[phase]


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float  # mean training loss of the largest member (label loss)
    largest: float  # val accuracy (%) of the largest member after BN recalibration
    smallest: float
    seconds: float


def process_group() -> tuple[int, int]:
    """(rank, world size) of the ``torch.distributed`` group this process is in; (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SupernetTraining:
    """Train (or resume training) the supernet of ``space`` on ``data``; checkpoints in ``out``.

    Inside a ``torch.distributed`` process group it trains data-parallel (see the module doc).
    """

    def __init__(self, space: str, data: Mapping[str, Any] | None, out: str | Path,
                 config: SupernetConfig, device: str | torch.device = "auto", amp: bool = False,
                 threads: int | None = None, calib_batches: int = 8) -> None:
        self.space_ref = str(space)
        self.space = load_space(space)
        require_architectures(self.space, "supernet")
        self.data_options = dict(data or DEFAULT_DATA)
        self.data = dataset_from_options(self.data_options)
        self.out = Path(out)
        self.config = config
        self.device = resolve_device(device)
        self.amp = bool(amp)
        self.threads = threads
        self.calib_batches = calib_batches
        self.rank, self.world = process_group()
        if config.batch_size < self.world:
            raise ConfigError(f"batch_size: the global batch {config.batch_size} is smaller than the "
                              f"{self.world} workers it is shared out to")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # same seed, same initial weights
            self.supernet = ElasticSupernet(self.space, self.data.num_classes,
                                            zero_init=config.zero_init).to(self.device)
        groups = kind_groups(self.space) if config.sampling == "fair" or config.largest_per_kind else {}
        self.kind_groups = groups if config.sampling == "fair" else {}
        self.dims = {d.name: d for d in self.space.dimensions()}
        macs = lambda a: cost(a, 10).macs  # one measure for every extreme member
        self.largest = extreme_member(self.space, macs, largest=True)
        self.smallest = extreme_member(self.space, macs, largest=False)
        # the largest member of every other kind of weights (largest_per_kind; none with uniform sampling)
        self.largest_kinds = (largest_of_kinds(self.space, self.largest, groups, macs)
                              if config.largest_per_kind and config.sampling != "uniform" else [])
        train = config.train_config()
        self.steps_per_epoch = max(1, self.data.size("train") // config.batch_size)
        self.optimizer = make_optimizer(self.supernet, train)
        self.scheduler = make_scheduler(self.optimizer, train, self.steps_per_epoch)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.model: nn.Module = self.supernet  # what a step runs: DDP's wrapper in a process group
        if self.world > 1:
            # device_ids stays None: the inputs (an Architecture among them) are not DDP's to move.
            # Older torch (GPU images lag the pin) has only broadcast_buffers, deprecated by 2.14.
            no_buffer_sync = "forward_sync_buffers" if "forward_sync_buffers" in \
                inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers"
            self.model = DistributedDataParallel(self.supernet, find_unused_parameters=True,
                                                 **{no_buffer_sync: False})
        self.epoch = 0
        self.history: list[dict[str, float]] = []

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT

    def pixels(self, arch: Architecture) -> int:
        return scaled_resolution(arch, self.config.resolution, self.space.base_resolution)

    def members(self, rng: random.Random, phase: str = "all") -> list[Architecture]:
        """The members one step trains (the largest first when it teaches the others), with the
        choices that ``phase`` does not open yet (``shrink=progressive``) at the largest member's."""
        drawn = self._drawn(rng)
        if phase == "all":
            return drawn
        largest = self.space.to_choices(self.largest)
        out: list[Architecture] = []
        for member in drawn:
            choices = self.space.to_choices(member)
            # only choices the largest member has: the phases before `all` open none that opens others
            opened = {k: v for k, v in choices.items() if k in largest and elastic_in(k, phase)}
            arch = self.space.from_choices({**largest, **opened})
            if arch not in out:  # the members a phase makes equal are trained once
                out.append(arch)
        return out

    def _drawn(self, rng: random.Random) -> list[Architecture]:
        """The members of a step under the sampling rule, every choice open."""
        if self.config.sampling == "uniform":
            return [self.space.sample(rng)]
        if self.config.sampling == "fair":
            sampled = self._kind_balanced(rng)
        else:
            sampled = [self.space.sample(rng) for _ in range(self.config.random_subnets)]
        # The largest and smallest members at a random resolution and width: every global choice
        # is then trained by the members that see every step (kept at one value, members of
        # another resolution or width score near chance: measured in benchmarks/oneshot_rank.py).
        shared = {}
        for dim in self.space.dimensions():
            if dim.name in GLOBAL and len(dim.values) > 1:
                shared[dim.name] = rng.choice(dim.values)
        ends = (self.largest, *self.largest_kinds, *(() if self.config.sampling == "fair" else (self.smallest,)))
        return [*(self.space.from_choices({**self.space.to_choices(m), **shared}) for m in ends), *sampled]

    def _kind_balanced(self, rng: random.Random) -> list[Architecture]:
        """``random_subnets`` random members in which every choice between kinds of weights (see
        `kind_groups`) takes each kind equally often (round robin, shuffled), so that weights
        of each kind are trained as often and among neighbours of every kind (FairNAS's strict
        fairness, applied to what shares no weights): with the smallest member in every step
        instead, a supernet tends to rank members by how many expansion-1 stages they have
        (docs/oneshot.md)."""
        choices = [self.space.to_choices(self.space.sample(rng)) for _ in range(self.config.random_subnets)]
        for name, groups in self.kind_groups.items():
            active = [i for i, c in enumerate(choices) if self.dims[name].active(c)]
            order = [groups[k % len(groups)] for k in range(len(active))]
            rng.shuffle(order)
            for i, group in zip(active, order):  # complete: a block type opens choices of its own
                choices[i] = self.space.complete({**choices[i], name: rng.choice(group)}, rng)
        return [self.space.from_choices(c) for c in choices]

    def resume(self) -> bool:
        """Load the checkpoint in ``out`` if there is one; True when training continues from it."""
        state = load_checkpoint(self.checkpoint) if self.rank == 0 and self.checkpoint.is_file() else None
        if self.world > 1:  # rank 0's file, so that ranks agree even where only it sees ``out``
            box = [state]
            dist.broadcast_object_list(box, src=0)
            state = box[0]
        if state is None:
            return False
        if state["space_name"] != self.space.name:
            raise ConfigError(f"resume: {self.checkpoint} holds a supernet of space {state['space_name']}, "
                              f"not {self.space.name}")
        # a setting added since the checkpoint was written had its default's behaviour then
        saved = {**supernet_defaults(), **state["config"]}
        if saved != asdict(self.config):
            changed = sorted(k for k, v in asdict(self.config).items() if saved.get(k) != v)
            was = ", ".join(f"{k}={saved.get(k)!r}" for k in changed)
            raise ConfigError(f"resume: {', '.join(changed)} differ from the checkpoint's settings ({was})")
        self.supernet.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        return True

    def run(self, on_epoch: Callable[[EpochStats], None] | None = None,
            on_step: Callable[[int, int], None] | None = None) -> list[dict[str, float]]:
        """Train the remaining epochs; returns the per-epoch history (rank 0's: the others only
        train, and call neither callback)."""
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        with intra_op_threads(self.threads):
            while self.epoch < self.config.epochs:
                start = time.perf_counter()
                loss = self._epoch(self.epoch, on_step if self.rank == 0 else None)
                if self.rank != 0:
                    self.epoch += 1
                    continue
                largest = self.score(self.largest)
                smallest = self.score(self.smallest)
                self.epoch += 1
                stats = EpochStats(self.epoch, loss, largest, smallest, time.perf_counter() - start)
                self.history.append(asdict(stats))
                self._save()
                log.info("supernet epoch %d: loss %.3f, largest %.1f%%, smallest %.1f%%",
                         stats.epoch, loss, largest, smallest)
                if on_epoch is not None:
                    on_epoch(stats)
        return self.history

    def _epoch(self, epoch: int, on_step: Callable[[int, int], None] | None) -> float:
        cfg = self.config
        # Batches and members depend on (seed, epoch) only: a resumed epoch repeats them exactly.
        order = torch.randperm(self.data.size("train"), generator=torch.Generator().manual_seed(
            cfg.seed * 100_003 + epoch))
        rng = random.Random(f"{cfg.seed}:{epoch}")  # the same members on every rank
        phase = cfg.phase(epoch)
        torch.manual_seed(cfg.seed * 100_003 + epoch + 1_000_003 * self.rank)  # dropout, stochastic depth
        self.supernet.train()
        total, count = 0.0, 0
        for step in range(self.steps_per_epoch):
            # the step's global batch, this rank's share of it
            index = order[step * cfg.batch_size:(step + 1) * cfg.batch_size][self.rank::self.world]
            members = self.members(rng, phase)
            self.optimizer.zero_grad(set_to_none=True)
            teacher = None
            for i, arch in enumerate(members):
                images, labels = self.data.take("train", self.pixels(arch), index)
                images, labels = images.to(self.device), labels.to(self.device)
                # gradients are averaged over the ranks once, in the last member's backward
                last = i == len(members) - 1
                sync = self.model.no_sync() if self.world > 1 and not last else contextlib.nullcontext()
                with sync:
                    with autocast(self.device, self.amp):
                        regularize = cfg.regularize == "all" or (i == 0 and cfg.sampling in TAUGHT)
                        logits = self.model(images, arch, regularize)
                        if teacher is not None:
                            loss = nn.functional.kl_div(nn.functional.log_softmax(logits.float(), 1), teacher,
                                                        reduction="batchmean")
                        else:
                            loss = self.criterion(logits.float(), labels)
                    if not torch.isfinite(loss):
                        raise NasError(f"supernet training diverged: loss {loss.item()} at epoch {epoch + 1}, "
                                       f"step {step + 1}; lower lr= or raise warmup_epochs=")
                    loss.backward()
                if i == 0:
                    total += loss.item() * len(labels)
                    count += len(labels)
                    if cfg.sampling in TAUGHT and cfg.distill:
                        teacher = nn.functional.softmax(logits.detach().float(), 1)
            self.optimizer.step()
            self.scheduler.step()
            if on_step is not None:
                on_step(epoch * self.steps_per_epoch + step + 1, cfg.epochs * self.steps_per_epoch)
        if self.world > 1:  # the loss over the whole global batch, not rank 0's share
            sums = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)
            dist.all_reduce(sums)
            total, count = sums.tolist()
        return total / max(1, count)

    def score(self, arch: Architecture) -> float:
        """Val accuracy (%) of a member with recalibrated BatchNorm statistics."""
        return score_member(self.supernet, arch, self.data, self.pixels(arch), self.device,
                            self.calib_batches, self.config.seed)[0]

    def _save(self) -> None:
        state = {
            "format": FORMAT, "space": self.space_ref, "space_name": self.space.name,
            "num_classes": self.data.num_classes, "data": self.data_options, "config": asdict(self.config),
            "epoch": self.epoch, "history": self.history, "model": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "largest": str(self.largest), "smallest": str(self.smallest),
        }
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)  # a crash mid-write leaves the previous epoch's file


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A supernet checkpoint (tensors and plain values only: ``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"ckpt: {path} does not exist (train one with: nas supernet train space=S)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, truncated or code-carrying files alike
        raise ConfigError(f"ckpt: {path} is not a readable supernet checkpoint "
                          f"({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"ckpt: {path} is not a supernet checkpoint (format {FORMAT})")
    return state


def load_supernet(path: str | Path, device: torch.device | str = "cpu") -> tuple[ElasticSupernet, dict[str, Any]]:
    """The trained supernet in a checkpoint, and the checkpoint's settings."""
    state = load_checkpoint(path)
    space = load_space(state["space"])
    supernet = ElasticSupernet(space, int(state["num_classes"]))
    supernet.load_state_dict(state["model"])
    return supernet.to(device), state


def score_member(supernet: ElasticSupernet, arch: Architecture, data: Any, pixels: int,
                 device: torch.device, calib_batches: int, seed: int,
                 finetune: TrainConfig | None = None) -> tuple[float, float, nn.Module]:
    """(val accuracy %, val loss, the extracted member) after BN recalibration (and fine-tuning)."""
    loader = data.loader("train", pixels, 64, seed)
    val = data.batches("val", pixels)
    if finetune is not None:
        model = supernet.extract(arch).to(device)
        result = fit(model, loader, val, finetune, device)
        return result.accuracy, result.loss, model
    # Same result as extract + recalibrate_batchnorm + evaluate (tests/nas/oneshot/test_supernet.py), without
    # building and copying a network per candidate.
    # NHWC, as the proxy evaluator trains: oneDNN's CPU convolutions run ~2x faster on it.
    layout = torch.channels_last
    calib = (images.to(device, memory_format=layout) for i, (images, _) in zip(range(calib_batches), loader))
    model = supernet.bind(arch, supernet.recalibrated(arch, calib, layout))
    accuracy, loss = evaluate(model, val, device, channels_last=True)
    return accuracy, loss, model


class SupernetEvaluator(Evaluator):
    """Score a member with the shared weights of a trained supernet (``ckpt``): BN recalibration
    on ``calib_batches`` training batches, then validation accuracy in %."""

    name = "supernet"
    noisy = False  # the shared weights and the calibration batches are fixed: a repeat changes nothing

    def __init__(self, ckpt: str, data: Mapping[str, Any] | None = None, calib_batches: int = 4,
                 finetune_steps: int = 0, finetune_lr: float = 0.001, device: str = "auto",
                 threads: int | None = None, seed: int = 0) -> None:
        check_int("calib_batches", calib_batches, 1)
        check_int("finetune_steps", finetune_steps, 0)
        self.device = resolve_device(device)
        self.supernet, state = load_supernet(ckpt, self.device)
        self.state = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler")}
        given = dict(data or {})
        if given and given.get("name", "digits") != state["data"].get("name", "digits"):
            raise ConfigError(f"data: the supernet in {ckpt} was trained on {state['data'].get('name')}, "
                              f"not {given.get('name')}")
        self.data = dataset_from_options({**state["data"], **given})
        self.num_classes = self.data.num_classes
        self.resolution = state["config"]["resolution"]
        self.calib_batches = calib_batches
        self.finetune = None if not finetune_steps else TrainConfig(
            steps=finetune_steps, lr=finetune_lr, warmup_epochs=0.0, bn_recalibration=calib_batches,
            channels_last=True)  # NHWC, as the proxy trains: 10 steps 6.6 s, not 8.9 s; same scores
        self.threads = threads
        self.seed = seed

    def check_space(self, space: Any) -> None:
        """Refuse a space other than the one the supernet was trained on."""
        require_architectures(space, self.name)
        if space.name != self.supernet.space.name:
            raise ConfigError(f"evaluator supernet: the checkpoint holds a supernet of space "
                              f"{self.supernet.space.name}, not {space.name}")

    def __call__(self, arch: Architecture | str, report: Reporter | None = None,
                 repeat: int = 0) -> dict[str, float]:
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        pixels = scaled_resolution(arch, self.resolution, self.supernet.space.base_resolution)
        start = time.perf_counter()
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with intra_op_threads(self.threads), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            accuracy, loss, _ = score_member(self.supernet, arch, self.data, pixels, self.device,
                                             self.calib_batches, self.seed, self.finetune)
        if not math.isfinite(loss):
            raise EvaluationFailed("diverged", f"validation loss is {loss}")
        c = cost(arch, self.num_classes)
        return {"accuracy": accuracy, "loss": loss, "params": c.params, "macs": c.macs,
                "train_resolution": pixels, "eval_s": time.perf_counter() - start}
