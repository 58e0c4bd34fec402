"""The Redis scripts of the in-flight limiter: the grant decision, atomic across every worker.

Keys (``KEYS[n]`` in the scripts): 1 held slots (zset step → lease expiry), 2 the line (zset step → first
refused ask), 3 grant times (zset), 4 the mean hold time (hash), 5 last asks (zset step → time), 6 the batch
of each step (hash), 7 each batch's lane (hash batch → ``priority:weight:max_inflight``), 8 each batch's
served clock (hash), 9 slots held per batch (hash), 10 predicted releases (zset step → time; in the
release script: 6).

Who gets a free slot: the highest priority lane with a step waiting; within a lane the batch whose served
clock is lowest (each grant advances it by 1 / weight: weighted fair share; a batch that joins starts at the
lowest clock of the batches waiting, so it neither starves them nor is starved); a batch at its own
``max_inflight`` is passed over. A step counts the waiters of more deserving batches ahead of it; a newcomer
(not yet in line) also counts the waiters of its own and of equally deserving batches, so it queues behind
them, while a step already in line takes any free slot its batch is owed (a late peer never idles a slot).
Waiters silent for 60 s leave the line (their messages were lost; the reconciler brings them back).
"""

from __future__ import annotations

ACQUIRE = """
local now, step, cap, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local batch, prio, weight, bmax = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local b = redis.call('HGET', KEYS[6], s)
  if b then redis.call('HINCRBY', KEYS[9], b, -1) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - 60)) do
  redis.call('ZREM', KEYS[2], s)
  redis.call('ZREM', KEYS[5], s)
  if not redis.call('ZSCORE', KEYS[1], s) then redis.call('HDEL', KEYS[6], s) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 600)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 600)
if redis.call('ZSCORE', KEYS[1], step) then
  redis.call('ZADD', KEYS[1], now + lease, step)
  return -1
end
redis.call('HSET', KEYS[7], batch, prio .. ':' .. weight .. ':' .. bmax)
redis.call('HSET', KEYS[6], step, batch)
local lanes = {}
local function lane(b)
  if lanes[b] == nil then
    local p, w, m = string.match(redis.call('HGET', KEYS[7], b) or '5:1:0', '([^:]+):([^:]+):([^:]+)')
    local held = tonumber(redis.call('HGET', KEYS[9], b) or '0')
    local m_n = tonumber(m)
    local served = tonumber(redis.call('HGET', KEYS[8], b) or '-1')
    lanes[b] = {prio = tonumber(p), weight = tonumber(w), served = served, full = m_n > 0 and held >= m_n}
  end
  return lanes[b]
end
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
      local better = l.prio > mine.prio or (l.prio == mine.prio and l.served < mine.served)
      local equal = l.prio == mine.prio and l.served == mine.served
      if better or (not in_line and (equal or b == batch)) then ahead = ahead + 1 end
    end
  end
end
local free = cap - redis.call('ZCARD', KEYS[1])
if not mine.full and ahead < free then
  redis.call('ZADD', KEYS[1], now + lease, step)
  redis.call('ZREM', KEYS[2], step)
  redis.call('ZREM', KEYS[5], step)
  redis.call('ZADD', KEYS[3], now, step)
  redis.call('HINCRBY', KEYS[9], batch, 1)
  redis.call('HSET', KEYS[8], batch, tostring(mine.served + 1 / mine.weight))
  return -1
end
redis.call('ZADD', KEYS[2], 'NX', now, step)
redis.call('ZADD', KEYS[5], now, step)
-- the waiter at place k asks again just after the k-th predicted release (KEYS[10])
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - tonumber(ARGV[9]))
local ends = redis.call('ZRANGE', KEYS[10], ahead, ahead, 'WITHSCORES')
return {ahead + 1, redis.call('HGET', KEYS[4], 'mean') or '', ends[2] or ''}
"""

RELEASE = """
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 7200)
local since = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
local b = redis.call('HGET', KEYS[4], ARGV[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  if b then redis.call('HINCRBY', KEYS[5], b, -1) end
  if since then
    local hold = math.max(0, now - since)
    local mean = tonumber(redis.call('HGET', KEYS[3], 'mean'))
    if mean then mean = mean + 0.05 * (hold - mean) else mean = hold end
    redis.call('HSET', KEYS[3], 'mean', tostring(mean))
    redis.call('EXPIRE', KEYS[3], 86400)
  end
end
redis.call('HDEL', KEYS[4], ARGV[1])
"""

# Forget a batch's waiters and lane (paused, stopped or cancelled: its share goes back at once).
FORGET = """
for _, s in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', KEYS[3], s) == ARGV[1] then
    redis.call('ZREM', KEYS[1], s)
    redis.call('ZREM', KEYS[2], s)
  end
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
"""
