"""One Lua call that reserves room in several counter hashes: all of them, or none.

For each hash and each named field, the room left is the field's limit minus what is
spent (`<field>`) and what calls in flight hold (`reserved_<field>`). When every field of
every hash has room for its amount, each amount is added to `reserved_<field>`
(settlement later moves it to `<field>` at the real figure); otherwise nothing changes.

Leases (gateway/state/leases.py): a hash may ask for `extra` per field on top. It is
granted, for the whole hash, only while every limited field keeps room for
(active instances + 1) x its extra after the amount; instances are those that asked for
a lease in the last `instance ms` (a sorted set, KEYS[1], touched only when one asks).

A hash may require a field (a mark, such as the ledger's `seeded`: its totals were
rebuilt after Redis lost them): a hash without it is neither checked nor changed, and
the call answers which one lacks it, so that the caller rebuilds it and asks again.

KEYS: the instances set, then the hashes.
ARGV: ttl ms, instance id, instance ms, then per hash: the field it requires ('' = none),
field count, then per field: name, limit ('' = none), amount, extra.
Returns {0, then per hash 1 if its extra was granted, else 0} when reserved, else
{the 1-based index of the first hash without room}, or {minus the 1-based index of the
first hash without its required field}: nothing is reserved then.
"""

from __future__ import annotations

from gateway.state.leases import ACTIVE_INSTANCES_LUA

RESERVE = (
    """
local ttl = tonumber(ARGV[1])
"""
    + ACTIVE_INSTANCES_LUA
    + """
local plan = {}
local leased = {}
local cursor = 4
for i = 2, #KEYS do
    local required = ARGV[cursor]
    if required ~= '' and redis.call('hexists', KEYS[i], required) == 0 then
        return {1 - i}
    end
    local count = tonumber(ARGV[cursor + 1])
    cursor = cursor + 2
    local fields = {}
    local lease = true
    local asked = false
    for _ = 1, count do
        local name, limit = ARGV[cursor], ARGV[cursor + 1]
        local text, extra_text = ARGV[cursor + 2], ARGV[cursor + 3]
        local amount = tonumber(text)
        local extra = tonumber(extra_text)
        cursor = cursor + 4
        if extra > 0 then
            asked = true
        end
        if limit ~= '' then
            local cap = tonumber(limit)
            local used = (tonumber(redis.call('hget', KEYS[i], name)) or 0)
                + (tonumber(redis.call('hget', KEYS[i], 'reserved_' .. name)) or 0)
            if used >= cap or used + amount > cap then
                return {i - 1}
            end
            if extra > 0 then
                local active = active_instances(ARGV[2], ARGV[3])
                if used + amount + (active + 1) * extra > cap then
                    lease = false
                end
            end
        end
        fields[#fields + 1] = {name, text, amount, extra_text, extra}
    end
    plan[i] = fields
    leased[i] = asked and lease
end
local out = {0}
for i = 2, #KEYS do
    for _, field in ipairs(plan[i]) do
        -- the client's own decimal strings: no float formatting on the way in
        if field[3] ~= 0 then
            redis.call('hincrbyfloat', KEYS[i], 'reserved_' .. field[1], field[2])
        end
        if leased[i] and field[5] ~= 0 then
            redis.call('hincrbyfloat', KEYS[i], 'reserved_' .. field[1], field[4])
        end
    end
    redis.call('pexpire', KEYS[i], ttl, 'NX')
    out[#out + 1] = leased[i] and 1 or 0
end
return out
"""
)

# Increments of several counter hashes in one call (settlements, releases): far less
# client CPU than one HINCRBYFLOAT per field in a pipeline. ARGV: ttl ms (0: none), then
# per hash: field count, then per field: name, amount. A hash without a ttl gets `ttl`
# (PEXPIRE NX); one that has a ttl keeps it.
INCREMENT = """
local ttl = tonumber(ARGV[1])
local cursor = 2
for i = 1, #KEYS do
    local count = tonumber(ARGV[cursor])
    cursor = cursor + 1
    for _ = 1, count do
        redis.call('hincrbyfloat', KEYS[i], ARGV[cursor], ARGV[cursor + 1])
        cursor = cursor + 2
    end
    if ttl > 0 and redis.call('pttl', KEYS[i]) == -1 then
        redis.call('pexpire', KEYS[i], ttl)
    end
end
return 0
"""
