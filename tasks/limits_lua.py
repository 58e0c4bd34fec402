"""The Redis scripts of the in-flight limiter: the grant decision, atomic across every worker.

Every script takes the same keys (``KEYS[n]``): 1 held slots (zset step → lease expiry), 2 the line (zset
step → first refused ask), 3 grant times (zset), 4 the mean hold time (hash), 5 when each waiter is next
heard of (zset step → its last ask, or a parked waiter's fallback time), 6 the batch of each step (hash),
7 each batch's lane (hash batch → ``priority:weight:max_inflight``), 8 each batch's served clock (hash),
9 slots held per batch (hash), 10 predicted releases (zset step → time), 11 parked waiters (hash step → its
submit message), 12 their fallback times (zset step → time).

Who gets a free slot: the highest priority lane with a step waiting; within a lane the batch whose served
clock is lowest (each grant advances it by 1 / weight: weighted fair share; a batch that joins starts at the
lowest clock of the batches waiting, so it neither starves them nor is starved); a batch at its own
``max_inflight`` is passed over. A step counts the waiters of more deserving batches ahead of it; a newcomer
(not yet in line) also counts the waiters of its own and of equally deserving batches, so it queues behind
them, while a step already in line takes any free slot its batch is owed (a late peer never idles a slot).
Waiters not heard of for 60 s leave the line (their messages were lost; the reconciler brings them back);
one that keeps asking (or stays parked) keeps its place however long it waits (videos: many minutes).

**Hand-over.** A refused submitter *parks* its message here (:data:`PARK`) instead of asking again on a
timer. Whenever a slot frees (a release, a parking that found a slot freed meanwhile, a worker's sweep
after leases ran out), :func:`handover` grants it to the most deserving parked waiter by the same rules
(earliest in line among equals) and takes its message: the caller publishes it, and its submit finds the
slot already held. A slot never idles while a parked step waits for it, and a waiter runs once per grant.
"""

from __future__ import annotations

_PRELUDE = """
local lanes = {}
local function lane(b)
  if lanes[b] == nil then
    local p, w, m = string.match(redis.call('HGET', KEYS[7], b) or '5:1:0', '([^:]+):([^:]+):([^:]+)')
    local l = {prio = tonumber(p), weight = tonumber(w), max = tonumber(m)}
    l.held = tonumber(redis.call('HGET', KEYS[9], b) or '0')
    l.served = tonumber(redis.call('HGET', KEYS[8], b) or '-1')
    l.full = l.max > 0 and l.held >= l.max
    lanes[b] = l
  end
  return lanes[b]
end
-- lane l goes before lane m: a higher priority, or the same priority and less served
local function before(l, m)
  return l.prio > m.prio or (l.prio == m.prio and l.served < m.served)
end
local function expire_leases(now)
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    local b = redis.call('HGET', KEYS[6], s)
    if b then redis.call('HINCRBY', KEYS[9], b, -1) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
-- true when a slot was taken; false for a step that held one already (another run of it, a re-kicked
-- duplicate, took it first): its lease is renewed, and nothing is counted twice
local function grant(step, b, l, now, lease)
  local held = redis.call('ZSCORE', KEYS[1], step)
  redis.call('ZADD', KEYS[1], now + lease, step)
  redis.call('ZREM', KEYS[2], step)
  redis.call('ZREM', KEYS[5], step)
  if held then return false end
  redis.call('ZADD', KEYS[3], now, step)
  redis.call('HINCRBY', KEYS[9], b, 1)
  l.served = math.max(0, l.served) + 1 / l.weight
  redis.call('HSET', KEYS[8], b, tostring(l.served))
  l.held = l.held + 1
  l.full = l.max > 0 and l.held >= l.max
  return true
end
local function handover(now, cap, lease)
  local out = {}
  local free = cap - redis.call('ZCARD', KEYS[1])
  while free > 0 do
    local best, best_b, best_l = nil, nil, nil
    for _, s in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
      if redis.call('HEXISTS', KEYS[11], s) == 1 then
        local b = redis.call('HGET', KEYS[6], s)
        local l = b and lane(b)
        if l and not l.full and (best == nil or before(l, best_l)) then
          best, best_b, best_l = s, b, l
        end
      end
    end
    if best == nil then break end
    if grant(best, best_b, best_l, now, lease) then free = free - 1 end
    table.insert(out, redis.call('HGET', KEYS[11], best))
    redis.call('HDEL', KEYS[11], best)
    redis.call('ZREM', KEYS[12], best)
  end
  return out
end
"""

# ARGV: now, step, cap, lease, batch, priority, weight, batch max, stale. -1: granted (or already held);
# else {place in line, mean hold, the predicted release the waiter should ask after}.
ACQUIRE = (
    _PRELUDE
    + """
local now, step, cap, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local batch, prio, weight, bmax = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
expire_leases(now)
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - 60)) do
  redis.call('ZREM', KEYS[2], s)
  redis.call('ZREM', KEYS[5], s)
  if not redis.call('ZSCORE', KEYS[1], s) then redis.call('HDEL', KEYS[6], s) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 7200)
if redis.call('ZSCORE', KEYS[1], step) then
  redis.call('ZADD', KEYS[1], now + lease, step)
  return -1
end
redis.call('HSET', KEYS[7], batch, prio .. ':' .. weight .. ':' .. bmax)
redis.call('HSET', KEYS[6], step, batch)
local waiters = redis.call('ZRANGE', KEYS[2], 0, -1)
local mine = lane(batch)
if mine.served < 0 then
  local low = nil
  for _, s in ipairs(waiters) do
    local b = redis.call('HGET', KEYS[6], s)
    if b and b ~= batch then
      local l = lane(b)
      if l.served >= 0 and (low == nil or l.served < low) then low = l.served end
    end
  end
  mine.served = low or 0
  redis.call('HSET', KEYS[8], batch, tostring(mine.served))
end
local in_line = redis.call('ZSCORE', KEYS[2], step)
local ahead = 0
for _, s in ipairs(waiters) do
  if s ~= step then
    local b = redis.call('HGET', KEYS[6], s)
    local l = b and lane(b)
    if l and not l.full then
      local equal = l.prio == mine.prio and l.served == mine.served
      if before(l, mine) or (not in_line and (equal or b == batch)) then ahead = ahead + 1 end
    end
  end
end
local free = cap - redis.call('ZCARD', KEYS[1])
if not mine.full and ahead < free then
  grant(step, batch, mine, now, lease)
  return -1
end
redis.call('ZADD', KEYS[2], 'NX', now, step)
redis.call('ZADD', KEYS[5], now, step)
-- the waiter at place k asks again just after the k-th predicted release (KEYS[10])
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - tonumber(ARGV[9]))
local ends = redis.call('ZRANGE', KEYS[10], ahead, ahead, 'WITHSCORES')
return {ahead + 1, redis.call('HGET', KEYS[4], 'mean') or '', ends[2] or ''}
"""
)

# ARGV: step, now, cap, lease. Frees the step's slot; the messages of the parked waiters it was handed to.
RELEASE = (
    _PRELUDE
    + """
local step, now = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 7200)
local since = tonumber(redis.call('ZSCORE', KEYS[3], step))
redis.call('ZREM', KEYS[3], step)
redis.call('ZREM', KEYS[10], step)
local b = redis.call('HGET', KEYS[6], step)
if redis.call('ZREM', KEYS[1], step) == 1 then
  if b then redis.call('HINCRBY', KEYS[9], b, -1) end
  if since then
    local hold = math.max(0, now - since)
    local mean = tonumber(redis.call('HGET', KEYS[4], 'mean'))
    if mean then mean = mean + 0.05 * (hold - mean) else mean = hold end
    redis.call('HSET', KEYS[4], 'mean', tostring(mean))
    redis.call('EXPIRE', KEYS[4], 86400)
  end
end
if not redis.call('ZSCORE', KEYS[2], step) then redis.call('HDEL', KEYS[6], step) end
expire_leases(now)
return handover(now, tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# ARGV: step, message, fallback time, now, cap, lease. Parks a refused submitter (it is heard of again at
# its fallback time at the latest); a slot freed meanwhile is handed over at once.
PARK = (
    _PRELUDE
    + """
local step, fallback, now = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HSET', KEYS[11], step, ARGV[2])
redis.call('ZADD', KEYS[12], fallback, step)
if redis.call('ZSCORE', KEYS[2], step) then redis.call('ZADD', KEYS[5], fallback, step) end
expire_leases(now)
return handover(now, tonumber(ARGV[5]), tonumber(ARGV[6]))
"""
)

# ARGV: now, cap, lease, limit. A worker's sweep: slots whose leases ran out (or a raised cap) go to parked
# waiters, and the parked waiters whose fallback time has come are taken (to ask again themselves).
SWEEP = (
    _PRELUDE
    + """
local now = tonumber(ARGV[1])
expire_leases(now)
local out = handover(now, tonumber(ARGV[2]), tonumber(ARGV[3]))
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[12], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local m = redis.call('HGET', KEYS[11], s)
  redis.call('HDEL', KEYS[11], s)
  redis.call('ZREM', KEYS[12], s)
  if m then table.insert(out, m) end
end
return out
"""
)

# Forget a batch's waiters and lane (paused, stopped or cancelled: its share goes back at once). Its parked
# waiters stay parked: at their fallback they ask, find the batch not running, and end there.
FORGET = """
for _, s in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('HGET', KEYS[6], s) == ARGV[1] then
    redis.call('ZREM', KEYS[2], s)
    redis.call('ZREM', KEYS[5], s)
  end
end
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
"""
