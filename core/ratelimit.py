"""How many calls each model may have in flight: what the provider admits, shared through Redis.

OpenRouter limits calls per model and window and answers 429 (with Retry-After and
X-RateLimit-Reset) when a key goes over. Every worker thread of every process and host takes a
slot of the model from Redis before its call and gives it back after, telling how the call
went. One limit per model, adapted the way TCP adapts its window:

- Additive increase: each successful call adds 1/limit, so the limit grows by about one per
  round of successful calls. Before the model's first 429 it grows by one per success instead
  (doubling per round, TCP's slow start), so a drop reaches what the provider admits in a few
  rounds rather than dozens. A call that ends while fewer than half the limit are in flight
  adds nothing: a model starved by another (the image model waiting for the style analyses)
  would otherwise grow a limit nobody tested, and burst to it once the work arrives.
- Multiplicative decrease: a 429 multiplies the limit by OPENROUTER_CONCURRENCY_DECREASE, at
  most once per round: a slot remembers the limit's `epoch` when it was taken, a decrease
  moves the epoch on, and the 429s of slots taken before it (the same burst) change nothing
  more. The limit stays between 1 and the model's ceiling (OPENROUTER_CONCURRENCY_CEILING, or
  its entry in OPENROUTER_CONCURRENCY_CEILINGS).
- Retry-After and X-RateLimit-Reset block the model: nobody takes a slot of it before then.
- Starts are spread: a slot comes with a start time at least (mean call time / limit) after
  the previous one. A provider counts calls per window; calls of one model take about as long
  as each other, so without spreading they end together, start again together, and a burst
  of `limit` calls within a second meets a window that admits the same calls spread over it.
  Spread evenly, `limit` calls in flight are limit / call time calls a second, which is what
  the window is compared with, and the limit settles where the provider's rate puts it. An
  interactive call starts at once all the same. (bench/worker_threads.py, 5 s a call against
  20 calls per 2 s: without spreading the limit fell to 20 and stayed near it, 88 images a
  minute; with it, it settled at 46.7 of the 50 admitted, 158 a minute, one 429 in 961 calls.)
- A 429 that states the provider's window (X-RateLimit-Limit calls, X-RateLimit-Reset when the
  oldest of them leaves) sets the model's pace: the window's length is that reset less the
  start of the Limit-th latest call it admitted (each model's latest starts are kept), and
  starts are then at least window / calls apart, PACE_MARGIN wider. Additive increase and
  halving alone swing the rate between half and all of what the window admits (bench/season.py
  measured 85 % of it on the busiest model); paced, it runs at 1 / PACE_MARGIN of it. Such a
  429 lowers the limit no further than the calls the pace puts in flight (its starts over a
  call's time, and a quarter more), as the pace now keeps the rate. The pace holds
  PACE_HOLD_SECONDS; the next 429 measures it again.

A slot is a member of a sorted set scored by its expiry. The process that holds it renews it
every third of OPENROUTER_SLOT_TTL_SECONDS while the call runs, so a worker killed with SIGKILL
leaves a slot that simply runs out: no leaked slot lowers the capacity for good. Taking and
giving back are Lua scripts, so concurrent workers never both take the last slot.

Waiting happens in the calling thread, which holds no database connection while it waits
(core.openrouter closes it before asking for a slot), at most until the deadline of the
current `turns()` block (OPENROUTER_RATE_WAIT_SECONDS by default); past it the call is not
made and NoSlot says how long the model is still blocked (core.openrouter raises it as a
429). Interactive work (`turns(interactive=True)`) goes first: while an interactive caller
waits for a model, no bulk caller takes a slot of it.

If Redis cannot be reached the call goes ahead unlimited (logged): Redis is also the task
broker, so a worker that is running at all has just reached it, and a pacing outage must not
fail paid work.

`limiter_state()` reads every model's limit, slots in flight, block and counters, for the
batch page and the benches.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "openrouter:pace"
POLL_SECONDS = 0.25  # a waiting caller looks again about this often (with jitter)
STARTS_KEPT = 1024  # each model's latest starts, to measure the provider's window at a 429
# A pace learned from a 429's window holds this long; then the next 429 measures it again, so
# a provider that raises its limit is followed within minutes.
PACE_HOLD_SECONDS = 600
# Starts are paced this much wider than the window allows: a call that leaves a few hundred
# milliseconds late must not make the next one the window's one too many.
PACE_MARGIN = 1.05

# KEYS: state, slots, waiting, starts. ARGV: now (ms), token, slot ttl (ms), first limit,
# ceiling, interactive (1/0), how long an interactive waiter's claim outlives its next look
# (ms), how many starts to remember.
# Returns {1, epoch, ms until its start} when the slot is taken, else {0, ms the model stays
# blocked (0: it is only full)}.
_TAKE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local ceiling = tonumber(ARGV[5])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[4])
limit = math.max(1, math.min(limit, ceiling))
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
local wait = 0
if blocked > now then
  wait = blocked - now
elseif redis.call('ZCARD', KEYS[2]) >= math.floor(limit) then
  wait = -1
elseif ARGV[6] == '0' and redis.call('ZCARD', KEYS[3]) > 0 then
  wait = -1
end
if wait ~= 0 then
  if ARGV[6] == '1' then
    redis.call('ZADD', KEYS[3], now + math.max(wait, 0) * 1.2 + tonumber(ARGV[7]), ARGV[2])
  end
  return {0, math.max(wait, 0)}
end
local latency = tonumber(redis.call('HGET', KEYS[1], 'latency') or '0')
local spacing = latency / limit
if tonumber(redis.call('HGET', KEYS[1], 'pace_until') or '0') > now then
  spacing = math.max(spacing, tonumber(redis.call('HGET', KEYS[1], 'interval') or '0'))
end
local start = math.max(now, tonumber(redis.call('HGET', KEYS[1], 'next_start') or '0'))
redis.call('HSET', KEYS[1], 'next_start', tostring(start + spacing))
if ARGV[6] == '1' then
  start = now  -- interactive: at once, ahead of the bulk starts already spread out
end
redis.call('ZADD', KEYS[2], start + tonumber(ARGV[3]), ARGV[2])
redis.call('ZADD', KEYS[4], start, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[8]) + 1))
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'limit') == 0 then
  redis.call('HSET', KEYS[1], 'limit', tostring(limit))
end
return {1, tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0'), math.floor(start - now)}
"""

# KEYS: state, slots, starts. ARGV: token, outcome (ok, limited, error: the call failed
# otherwise, or other: no call was made), the slot's epoch,
# first limit, ceiling, decrease factor, blocked until (ms, 0: none), the call's time (ms), the
# window's calls (X-RateLimit-Limit, 0: not said), the window's reset (epoch ms, 0: not said),
# now (ms), how long a learned pace holds (ms), its margin. Returns the new limit as text.
_GIVE_BACK = """
local in_flight = redis.call('ZCARD', KEYS[2])
redis.call('ZREM', KEYS[2], ARGV[1])
local ceiling = tonumber(ARGV[5])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[4])
if ARGV[2] == 'ok' then
  redis.call('HINCRBY', KEYS[1], 'calls', 1)
  local latency = tonumber(redis.call('HGET', KEYS[1], 'latency') or '0')
  local took = tonumber(ARGV[8])
  if latency > 0 then latency = 0.9 * latency + 0.1 * took else latency = took end
  redis.call('HSET', KEYS[1], 'latency', tostring(latency))
  if in_flight < math.floor(limit) / 2 then
    -- the limit was not what held the calls back: it does not grow for them
  elseif redis.call('HGET', KEYS[1], 'slow_start') == '0' then
    limit = limit + 1 / math.max(limit, 1)
  else
    limit = limit + 1
  end
elseif ARGV[2] == 'limited' then
  -- The provider did not count this call. When it said its window (calls, and when the
  -- oldest of them leaves it), the window's length is that reset less the start of the
  -- calls-th latest call admitted before this one: starts are paced one window / calls apart.
  local start = redis.call('ZSCORE', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  local calls, reset = tonumber(ARGV[9]), tonumber(ARGV[10])
  local floor = 1
  if start and calls > 0 and reset > 0 then
    local oldest = redis.call('ZREVRANGEBYSCORE', KEYS[3], start, '-inf', 'WITHSCORES', 'LIMIT', calls - 1, 1)
    if oldest[2] then
      local window = reset - tonumber(oldest[2])
      if window > 0 then
        local interval = window * tonumber(ARGV[13]) / calls
        redis.call('HSET', KEYS[1], 'interval', tostring(interval),
          'pace_until', tostring(tonumber(ARGV[11]) + tonumber(ARGV[12])))
        -- The pace now keeps the rate: the limit need not fall below the calls it puts in
        -- flight (its starts over a call's time), with a quarter more for slots that wait
        -- for their start.
        local latency = tonumber(redis.call('HGET', KEYS[1], 'latency') or '0')
        floor = 1.25 * latency / interval
      end
    end
  end
  redis.call('HINCRBY', KEYS[1], 'rate_limited', 1)
  local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
  if tonumber(ARGV[3]) >= epoch then
    limit = math.max(limit * tonumber(ARGV[6]), math.min(floor, limit))
    redis.call('HSET', KEYS[1], 'epoch', epoch + 1, 'slow_start', '0')
  end
  local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
  if tonumber(ARGV[7]) > blocked then
    redis.call('HSET', KEYS[1], 'blocked_until', ARGV[7])
  end
elseif ARGV[2] == 'error' then
  redis.call('HINCRBY', KEYS[1], 'errors', 1)
end
limit = math.max(1, math.min(limit, ceiling))
redis.call('HSET', KEYS[1], 'limit', tostring(limit))
return tostring(limit)
"""


@dataclass(frozen=True)
class ModelPace:
    """One model's pacing as the limiter holds it now (`limiter_state`)."""

    model: str
    limit: float  # calls it may have in flight (the whole part counts)
    ceiling: int
    in_flight: int
    blocked_until: datetime | None  # no call starts before (Retry-After, X-RateLimit-Reset)
    paced_per_minute: float | None  # starts a minute at most, from the provider's window
    calls: int  # successful calls
    rate_limited: int  # 429s answered
    waited_seconds: float  # time callers spent waiting for a slot, added up
    errors: int = 0  # calls that failed otherwise (timeouts, 5xx, unusable answers)
    latency_seconds: float = 0.0  # a successful call's time, a moving average (/metrics)


@dataclass
class _Turns:
    deadline: float  # time.monotonic() after which a caller stops waiting
    interactive: bool
    waited: float = 0.0  # seconds the block's calls have waited for slots so far


_turns: contextvars.ContextVar[_Turns | None] = contextvars.ContextVar("turns", default=None)


@contextmanager
def turns(*, interactive: bool = False, budget: float | None = None) -> Iterator[None]:
    """The calls made in the block wait at most `budget` seconds for slots, all together
    (OPENROUTER_RATE_WAIT_SECONDS by default), and go first when `interactive`."""
    seconds = settings.OPENROUTER_RATE_WAIT_SECONDS if budget is None else budget
    token = _turns.set(_Turns(time.monotonic() + seconds, interactive))
    try:
        yield
    finally:
        _turns.reset(token)


def turns_waited() -> float:
    """Seconds the calls of the current `turns()` block have waited for slots so far (the
    rate limit's share of their time)."""
    current = _turns.get()
    return current.waited if current is not None else 0.0


def waits_left() -> bool:
    """Whether calls of the current `turns()` block may still wait for a slot. False without a
    limiter: nothing would make a call after a 429 wait for the model's block to end."""
    current = _turns.get()
    deadline = current.deadline if current is not None else math.inf
    return bool(settings.OPENROUTER_LIMITER_URL) and deadline > time.monotonic()


def ceiling_for(model: str) -> int:
    return int(
        settings.OPENROUTER_CONCURRENCY_CEILINGS.get(model, settings.OPENROUTER_CONCURRENCY_CEILING)
    )


class NoSlot(Exception):
    """No slot of the model came free before the caller's deadline; `wait` is how long the
    model is still blocked (at least a poll interval)."""

    def __init__(self, model: str, waited: float, wait: float):
        super().__init__(f"{model} is at its rate limit: no call slot within {waited:.0f} s")
        self.model, self.wait = model, wait


class Slot:
    """A taken slot; `limited()` reports a 429 before the slot is given back."""

    def __init__(self, model: str, token: str, *, epoch: int, start_in: float = 0.0):
        self.model, self.token, self.epoch = model, token, epoch
        self.start_in = start_in  # seconds until its start, to spread the model's starts
        self.blocked_for: float | None = None
        self.window: tuple[int, float] = (0, 0.0)  # the provider's, at a 429 that said it
        self.started = time.monotonic()

    def limited(
        self,
        retry_after: float | None,
        *,
        window_calls: int | None = None,
        window_reset: float | None = None,
    ) -> None:
        """The call was answered 429: the model is blocked for `retry_after` seconds (at least
        one when the provider did not say). `window_calls` and `window_reset` (epoch seconds)
        are the provider's window when it said it (X-RateLimit-Limit and -Reset): the model's
        starts are then paced to it."""
        self.blocked_for = max(retry_after or 0.0, 1.0)
        self.window = (window_calls or 0, window_reset or 0.0)


@contextmanager
def slot(model: str) -> Iterator[Slot | None]:
    """Hold one of `model`'s slots while the block runs (None when Redis is away).

    Waits in this thread for a free slot; raises NoSlot when the current `turns()` deadline
    comes first.
    """
    client = _client()
    taken = _started(client, model) if client is not None else None
    if taken is None:
        yield None
        return
    outcome = "error"  # the call raised (a timeout, a 5xx, an unusable answer): counted
    try:
        yield taken
        outcome = "ok"
    finally:
        _renewer().drop(_key(model, "slots"), taken.token)
        if taken.blocked_for is not None:
            outcome = "limited"
        _give_back(client, taken, outcome)


def _started(client: redis.Redis, model: str) -> Slot | None:
    """A slot whose start time has come (None when Redis is away). A 429 that blocks the model
    while a slot waits for its start sends it back to wait for the block's end."""
    while True:
        taken = _take(client, model)
        if taken is None:
            return None
        _renewer().keep(_key(model, "slots"), taken.token)
        try:
            if taken.start_in > 0:
                time.sleep(taken.start_in)
            blocked = taken.start_in > 0 and _blocked(client, model)
        except BaseException:  # a time limit, a shutdown: the slot goes back, not renewed on
            blocked = True
            raise
        finally:
            if blocked:
                _renewer().drop(_key(model, "slots"), taken.token)
                _give_back(client, taken, "other")
        if not blocked:
            taken.started = time.monotonic()
            return taken


def _take(client: redis.Redis, model: str) -> Slot | None:
    current = _turns.get()
    interactive = bool(current and current.interactive)
    deadline = (
        current.deadline
        if current is not None
        else time.monotonic() + settings.OPENROUTER_RATE_WAIT_SECONDS
    )
    token, started = uuid.uuid4().hex, time.monotonic()
    keys = [_key(model, part) for part in ("state", "slots", "waiting", "starts")]
    ttl_ms = int(settings.OPENROUTER_SLOT_TTL_SECONDS * 1000)
    while True:
        try:
            taken, value, *rest = _scripts(client)["take"](
                keys=keys,
                args=[
                    _now_ms(),
                    token,
                    ttl_ms,
                    settings.OPENROUTER_CONCURRENCY_START,
                    ceiling_for(model),
                    int(interactive),
                    2000,
                    STARTS_KEPT,
                ],
            )
        except redis.RedisError as exc:
            logger.warning("rate limiter unavailable (%s): %s goes ahead unlimited", exc, model)
            return None
        if taken:
            start_in = int(rest[0]) / 1000
            _note_model(client, model, time.monotonic() - started + start_in)
            return Slot(model, token, epoch=int(value), start_in=start_in)
        blocked = value / 1000  # the model's block, or 0 when it is only full
        # Blocked callers wake spread over a little after the block ends, not all at once.
        if blocked:
            pause = blocked * random.uniform(1.0, 1.1) + POLL_SECONDS * random.uniform(0, 0.2)
        else:
            pause = POLL_SECONDS * random.uniform(0.8, 1.2)
        if pause > deadline - time.monotonic():
            waited = time.monotonic() - started
            _note_model(client, model, waited)
            raise NoSlot(model, waited, max(blocked, POLL_SECONDS))
        time.sleep(pause)


def _blocked(client: redis.Redis, model: str) -> bool:
    try:
        until = client.hget(_key(model, "state"), "blocked_until")
    except redis.RedisError:
        return False
    return until is not None and float(until) > _now_ms()


def _give_back(client: redis.Redis, taken: Slot, outcome: str) -> None:
    blocked_until = (
        _now_ms() + int(taken.blocked_for * 1000) if taken.blocked_for is not None else 0
    )
    try:
        _scripts(client)["give_back"](
            keys=[_key(taken.model, part) for part in ("state", "slots", "starts")],
            args=[
                taken.token,
                outcome,
                taken.epoch,
                settings.OPENROUTER_CONCURRENCY_START,
                ceiling_for(taken.model),
                settings.OPENROUTER_CONCURRENCY_DECREASE,
                blocked_until,
                int((time.monotonic() - taken.started) * 1000),
                taken.window[0],
                int(taken.window[1] * 1000),
                _now_ms(),
                PACE_HOLD_SECONDS * 1000,
                PACE_MARGIN,
            ],
        )
    except redis.RedisError as exc:  # the slot runs out by itself
        logger.warning("could not give back a slot of %s: %s", taken.model, exc)


def _note_model(client: redis.Redis, model: str, waited: float) -> None:
    """Remember the model (for limiter_state) and add the time waited for it, to the model's
    count and to the current `turns()` block's."""
    if (current := _turns.get()) is not None:
        current.waited += waited
    pipe = client.pipeline(transaction=False)
    pipe.sadd(f"{PREFIX}:models", model)
    if waited > 0.001:
        pipe.hincrbyfloat(_key(model, "state"), "waited", round(waited, 3))
    try:
        pipe.execute()
    except redis.RedisError as exc:  # figures only: the call goes on
        logger.warning("could not count the wait for %s: %s", model, exc)


def limiter_state() -> dict[str, ModelPace]:
    """Each model's limit, slots in flight, block and counters (empty when Redis is away)."""
    client = _client()
    if client is None:
        return {}
    now = _now_ms()
    try:
        models = sorted(m.decode() for m in client.smembers(f"{PREFIX}:models"))
        pipe = client.pipeline(transaction=False)
        for model in models:
            pipe.hgetall(_key(model, "state"))
            pipe.zcount(_key(model, "slots"), now, "+inf")
        answers = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("cannot read the rate limiter: %s", exc)
        return {}
    state = {}
    for model, fields, in_flight in zip(models, answers[::2], answers[1::2], strict=True):
        fields = {key.decode(): value.decode() for key, value in fields.items()}
        blocked = int(float(fields.get("blocked_until", 0)))
        interval = float(fields.get("interval", 0))
        paced = float(fields.get("pace_until", 0)) > now and interval > 0
        state[model] = ModelPace(
            model=model,
            limit=float(fields.get("limit", settings.OPENROUTER_CONCURRENCY_START)),
            ceiling=ceiling_for(model),
            in_flight=in_flight,
            blocked_until=datetime.fromtimestamp(blocked / 1000, UTC) if blocked > now else None,
            paced_per_minute=60_000 / interval if paced else None,
            calls=int(fields.get("calls", 0)),
            rate_limited=int(fields.get("rate_limited", 0)),
            waited_seconds=float(fields.get("waited", 0)),
            errors=int(fields.get("errors", 0)),
            latency_seconds=float(fields.get("latency", 0)) / 1000,
        )
    return state


def limiter_reachable() -> bool | None:
    """Whether the limiter's Redis answers now; None when no limiter is configured (calls are
    not paced). `limiter_state()` is empty both when Redis is away and before any call: this
    tells the two apart, for pages that must say which."""
    client = _client()
    if client is None:
        return None
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _key(model: str, part: str) -> str:
    # The braces keep a model's keys in one hash slot, as a script's keys must be on a cluster.
    return f"{PREFIX}:{{{model}}}:{part}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _client() -> redis.Redis | None:
    url = settings.OPENROUTER_LIMITER_URL
    return _client_for(os.getpid(), url) if url else None


@functools.lru_cache(maxsize=4)
def _client_for(pid: int, url: str) -> redis.Redis:
    # `pid` is part of the key: a forked worker opens connections of its own.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


@functools.lru_cache(maxsize=4)
def _scripts(client: redis.Redis) -> dict[str, redis.commands.core.Script]:
    return {
        "take": client.register_script(_TAKE),
        "give_back": client.register_script(_GIVE_BACK),
    }


class _Renewer:
    """One thread per process renews the expiry of every slot the process holds."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], None] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="slot-renewer", daemon=True)
        self._thread.start()

    def keep(self, key: str, token: str) -> None:
        with self._lock:
            self._held[(key, token)] = None

    def drop(self, key: str, token: str) -> None:
        with self._lock:
            self._held.pop((key, token), None)

    def _run(self) -> None:
        while True:
            # A third of the ttl, read each time (at most a second, so a shorter ttl set later
            # is honoured at once).
            time.sleep(min(settings.OPENROUTER_SLOT_TTL_SECONDS / 3, 1.0))
            with self._lock:
                held = list(self._held)
            client = _client()
            if not held or client is None:
                continue
            expiry = _now_ms() + int(settings.OPENROUTER_SLOT_TTL_SECONDS * 1000)
            try:
                pipe = client.pipeline(transaction=False)
                for key, token in held:
                    pipe.zadd(key, {token: expiry}, xx=True)  # never revives a given-back slot
                pipe.execute()
            except redis.RedisError as exc:
                logger.warning("could not renew %s call slot(s): %s", len(held), exc)


_renewers: dict[int, _Renewer] = {}
_renewers_lock = threading.Lock()


def _renewer() -> _Renewer:
    with _renewers_lock:  # one per process: a forked child starts its own thread
        pid = os.getpid()
        if pid not in _renewers:
            _renewers[pid] = _Renewer()
        return _renewers[pid]
