"""Distributed builds on Ray: the (model, language) shards of one or more models counted by a pool of actors.

Each actor holds one model replica (one GPU per actor when the cluster has GPUs, else one CPU) and counts the
shards the driver hands it, one at a time, with the same ``ShardCounter`` as a single-process build; shards of
the model an actor already holds go to it first, so several models share the pool. The driver writes every
shard it gets back. An actor that dies loses only the shard it was counting: the driver replaces the actor and
hands that shard to the next free one. Needs the [ray] extra; nothing else imports ray.
"""
from __future__ import annotations

import gc
import signal
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import ray

from ..corpus.base import Corpus
from ..errors import AtlasError
from ..modeling.load import LoadedModel, load_model
from .ray_address import check_reachable
from .ray_janitor import release, watch_ray_processes
from .shard import ShardCounter, ShardResult, ShardSettings

MAX_ATTEMPTS = 3  # workers a shard may lose before the build gives up on it


class ShardWorker:
    """A Ray actor holding one model replica at a time; ``count`` loads another model only when handed one."""

    def __init__(self, corpus: Corpus, settings: ShardSettings, dtype: str, device: str) -> None:
        self.corpus, self.settings, self.dtype, self.device = corpus, settings, dtype, device
        self.counter: ShardCounter | None = None

    def count(self, slug: str, source: list, gguf_file: str | None, tag: str, next_tag: str | None) -> ShardResult:
        """Count ``tag`` on model ``slug`` while reading ``next_tag`` ahead; ``source`` is [name] or [ObjectRef of a
        LoadedModel] (kept unresolved)."""
        if self.counter is None or self.counter.slug != slug:
            if self.counter is not None:
                self.counter.close()
            self.counter = None
            gc.collect()
            if isinstance(source[0], ray.ObjectRef):
                loaded: LoadedModel = ray.get(source[0])
                if self.device != "auto":
                    loaded.model.to(self.device)
            else:
                loaded = load_model(source[0], gguf_file, self.dtype, self.device)
            self.counter = ShardCounter(slug, loaded, self.corpus, self.settings)
        return self.counter.count(tag, next_tag=next_tag)


def count_on_ray(shards: list[tuple[str, str]], models: dict[str, tuple[str | LoadedModel, str | None]],
                 corpus: Corpus, settings: ShardSettings, *, dtype: str, device: str,
                 address: str, workers: int | None, gpus_per_worker: int = 1, accept: Callable[[ShardResult], None],
                 note: Callable[[str, str], None]) -> None:
    """Count the (model slug, language) ``shards`` on Ray actors, passing each result to ``accept`` in the driver.

    ``models`` maps each slug to its source (a name each worker loads, or a LoadedModel shipped to them) and GGUF file.

    ``address`` is 'auto' (the cluster this machine knows, else a new local one) or a cluster address; an
    already initialised Ray connection is used as is. ``note(slug, message)`` reports lost workers.
    """
    started, watcher = not ray.is_initialized(), None
    if started:
        check_reachable(address)  # ray.init would retry an address where nothing listens for minutes
        try:  # no dashboard: fewer processes to outlive a driver that is killed
            ray.init(address=None if address == "auto" else address, include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise AtlasError(f"cannot connect to the Ray cluster at {address!r} ({exc}); start one with `ray start "
                             "--head`, or pass ray='auto' to start a local one") from exc
        watcher = watch_ray_processes()  # kills the Ray processes this driver started if it dies before shutdown
    actors: list = []
    with _sigterm_as_interrupt() if started else nullcontext():
        try:
            pool = _Pool(corpus, settings, dtype, device, workers, gpus_per_worker)
            sources = {slug: [ray.put(source) if isinstance(source, LoadedModel) else source]
                       for slug, (source, _) in models.items()}
            gguf = {slug: gguf_file for slug, (_, gguf_file) in models.items()}
            queue = deque(shards)
            actors = [pool.start() for _ in range(min(pool.size, len(queue)))]
            idle, holding, ahead = list(actors), {}, {}  # ahead: actor -> the shard it reads while counting
            inflight: dict = {}  # ObjectRef -> (actor, (slug, tag))
            lost: Counter = Counter()

            def choose(actor) -> tuple[str, str]:
                """The shard the actor read ahead, else one of the model it holds that no other actor reads ahead."""
                mine = ahead.pop(actor, None)
                if mine in queue:
                    return mine
                others = set(ahead.values())
                free = [s for s in queue if s not in others] or list(queue)
                return next((s for s in free if s[0] == holding.get(actor)), free[0])

            def dispatch() -> None:  # every idle actor gets a shard, and the next one of its model to read ahead
                while idle and queue:
                    actor = idle.pop()
                    shard = choose(actor)
                    queue.remove(shard)
                    others = set(ahead.values())
                    after = next((s for s in queue if s[0] == shard[0] and s not in others), None)
                    if after is not None:
                        ahead[actor] = after
                    ref = actor.count.remote(shard[0], sources[shard[0]], gguf[shard[0]], shard[1], after and after[1])
                    inflight[ref] = (actor, shard)
                    holding[actor] = shard[0]

            while queue or inflight:
                dispatch()
                [ref], _ = ray.wait(list(inflight), num_returns=1)
                actor, shard = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, AtlasError):  # the worker's own clear error (model, corpus), without Ray's
                        raise exc.cause from None
                    raise
                except ray.exceptions.RayActorError as exc:  # the worker died: killed, out of memory, node lost
                    lost[shard] += 1
                    if lost[shard] >= MAX_ATTEMPTS:
                        raise AtlasError(f"{shard[0]} {shard[1]}: {lost[shard]} workers died counting this shard; "
                                         f"last: {exc}") from exc
                    note(shard[0], f"a worker died counting {shard[1]} ({type(exc).__name__}); counting it on another")
                    queue.appendleft(shard)
                    holding.pop(actor, None)
                    ahead.pop(actor, None)
                    ray.kill(actor)
                    actors[actors.index(actor)] = fresh = pool.start()
                    idle.append(fresh)
                    continue
                idle.append(actor)
                dispatch()  # the actor counts its next shard while the driver writes this one
                accept(result)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()
                release(watcher)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the pool runs, SIGTERM (``kill PID``, a scheduler's stop) interrupts like Ctrl-C, so the driver kills its
    actors and shuts down the Ray processes it started instead of leaving them behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Pool:
    """How the build's actors are made: ``gpus`` GPUs each when the cluster has GPUs and ``device`` is not 'cpu'."""

    def __init__(self, corpus: Corpus, settings: ShardSettings, dtype: str, device: str, workers: int | None,
                 gpus: int) -> None:
        resources = ray.cluster_resources()
        have, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        if device != "cpu" and have < gpus:
            raise AtlasError(f"device={device!r} needs {gpus} GPU(s) per worker but the Ray cluster has {have} "
                             f"({cpus} CPUs); pass device='cpu' or fewer gpus_per_worker")
        fits = have // gpus if device != "cpu" else cpus
        self.size = workers or fits
        if not 1 <= self.size <= fits:  # an actor the cluster cannot place would hold its shards forever
            raise AtlasError(f"workers={workers}: the Ray cluster fits 1 to {fits} workers "
                             f"({cpus} CPUs, {have} GPUs, {gpus if device != 'cpu' else 0} GPU(s) and 1 CPU each)")
        options = {"num_cpus": 1, "num_gpus": gpus if device != "cpu" else 0, "max_restarts": 0, "max_task_retries": 0}
        self._actor = ray.remote(**options)(ShardWorker)
        # Ray makes each actor's GPUs visible to it alone: one is cuda:0, several are spread over with device_map
        inside = "cpu" if device == "cpu" else ("cuda" if gpus == 1 else "auto")
        self._args = (ray.put(corpus), settings, dtype, inside)

    def start(self):
        return self._actor.remote(*self._args)
