"""One Lua call that decides every rule of a request (plain Redis and Sentinel).

The `limits` library's sliding-window counter, for N rules at once, on its key layout
(KEYS[2i-1] the previous window, KEYS[2i] the current one) and with its arithmetic, so
counts stay compatible with its own scripts (used on a Cluster, where one call cannot span
hash slots). ARGV per rule: limit, expiry seconds, amount, report (1: return its window).
Rules are taken in order; at the first that lacks room, what the earlier ones took is
given back inside the same call, so a refused request takes nothing.
Returns {refused rule (1-based) or 0, then per reported rule (and the refused one):
previous count, previous ttl ms, current count, current ttl ms}.
"""

from __future__ import annotations

ACQUIRE_ALL = """
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

local n = #KEYS / 2
local refused = 0
local taken = 0
for i = 1, n do
    local prev, cur = KEYS[2 * i - 1], KEYS[2 * i]
    local limit = tonumber(ARGV[4 * i - 3])
    local expiry = tonumber(ARGV[4 * i - 2]) * 1000
    local amount = tonumber(ARGV[4 * i - 1])
    shift(prev, cur, expiry)
    local pc, pt, cc = counts(prev, cur)
    if amount > limit or math.floor(pc * pt / expiry) + cc + amount > limit then
        refused = i
        break
    end
    if redis.call('exists', cur) == 1 then
        redis.call('incrby', cur, amount)
    else
        redis.call('set', cur, amount, 'PX', expiry * 2)
    end
    taken = i
end
if refused > 0 then
    for i = 1, taken do
        redis.call('decrby', KEYS[2 * i], tonumber(ARGV[4 * i - 1]))
    end
end
local out = {refused}
for i = 1, n do
    if ARGV[4 * i] == '1' or i == refused then
        local pc, pt, cc, ct = counts(KEYS[2 * i - 1], KEYS[2 * i])
        out[#out + 1] = pc
        out[#out + 1] = pt
        out[#out + 1] = cc
        out[#out + 1] = ct
    end
end
return out
"""
