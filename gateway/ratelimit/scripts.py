"""One Lua call that decides every rule of a request (plain Redis and Sentinel).

The `limits` library's sliding-window counter, for N rules at once, on its key layout
(per rule, the previous window's key then the current one's) and with its arithmetic, so
counts stay compatible with its own scripts (used on a Cluster, where one call cannot span
hash slots). Rules are taken in order; at the first that lacks room, what the earlier ones
took is given back inside the same call, so a refused request takes nothing.

Leases (gateway/state/leases.py): a rule may ask for `extra` on top of its amount. It is
taken with the amount only while the room left after the amount is at least
(active instances + 1) x extra; instances are those that asked for a lease in the last
`instance ms` (a sorted set, KEYS[1], touched only when some rule asks).

KEYS: the instances set, then per rule: previous window, current window.
ARGV: instance id, instance ms, then per rule: limit, expiry seconds, amount,
report (1: return its window), extra.
Returns {refused rule (1-based) or 0, per rule the extra granted, then per reported rule
(and the refused one): previous count, previous ttl ms, current count, current ttl ms}.
"""

from __future__ import annotations

from gateway.state.leases import ACTIVE_INSTANCES_LUA

ACQUIRE_ALL = (
    """
local function shift(prev, cur, expiry)
    local ttl = tonumber(redis.call('pttl', cur))
    if ttl > 0 and ttl < expiry then
        redis.call('rename', cur, prev)
        redis.call('set', cur, 0, 'PX', ttl + expiry)
    end
end

local function counts(prev, cur)
    local pc = tonumber(redis.call('get', prev)) or 0
    local pt = math.max(tonumber(redis.call('pttl', prev)) or 0, 0)
    local cc = tonumber(redis.call('get', cur)) or 0
    local ct = math.max(tonumber(redis.call('pttl', cur)) or 0, 0)
    return pc, pt, cc, ct
end

"""
    + ACTIVE_INSTANCES_LUA
    + """
local n = (#KEYS - 1) / 2
local refused = 0
local took = {}
local granted = {}
for i = 1, n do
    local prev, cur = KEYS[2 * i], KEYS[2 * i + 1]
    local base = 2 + 5 * (i - 1)
    local limit = tonumber(ARGV[base + 1])
    local expiry = tonumber(ARGV[base + 2]) * 1000
    local amount = tonumber(ARGV[base + 3])
    local extra = tonumber(ARGV[base + 5])
    shift(prev, cur, expiry)
    local pc, pt, cc = counts(prev, cur)
    local used = math.floor(pc * pt / expiry) + cc
    if amount > limit or used + amount > limit then
        refused = i
        break
    end
    granted[i] = 0
    if extra > 0 and limit - used - amount >= (active_instances(ARGV[1], ARGV[2]) + 1) * extra then
        granted[i] = extra
    end
    local take = amount + granted[i]
    if redis.call('exists', cur) == 1 then
        redis.call('incrby', cur, take)
    else
        redis.call('set', cur, take, 'PX', expiry * 2)
    end
    took[i] = take
end
if refused > 0 then
    for i = 1, #took do
        redis.call('decrby', KEYS[2 * i + 1], took[i])
        granted[i] = 0
    end
end
local out = {refused}
for i = 1, n do
    out[#out + 1] = granted[i] or 0
end
for i = 1, n do
    if ARGV[2 + 5 * (i - 1) + 4] == '1' or i == refused then
        local pc, pt, cc, ct = counts(KEYS[2 * i], KEYS[2 * i + 1])
        out[#out + 1] = pc
        out[#out + 1] = pt
        out[#out + 1] = cc
        out[#out + 1] = ct
    end
end
return out
"""
)
