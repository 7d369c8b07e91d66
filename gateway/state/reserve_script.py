"""One Lua call that reserves room in several counter hashes: all of them, or none.

For each hash (KEYS[i]) and each named field, the room left is the field's limit minus
what is spent (`<field>`) and what calls in flight hold (`reserved_<field>`). When every
field of every hash has room for its amount, each amount is added to `reserved_<field>`
(settlement later moves it to `<field>` at the real figure); otherwise nothing changes.
ARGV: ttl ms, then per hash: field count, then per field: name, limit ('' = none), amount.
Returns 0 when reserved, else the 1-based index of the first hash without room.
"""

from __future__ import annotations

RESERVE = """
local ttl = tonumber(ARGV[1])
local plan = {}
local cursor = 2
for i = 1, #KEYS do
    local count = tonumber(ARGV[cursor])
    cursor = cursor + 1
    local fields = {}
    for _ = 1, count do
        local name, limit, text = ARGV[cursor], ARGV[cursor + 1], ARGV[cursor + 2]
        local amount = tonumber(text)
        cursor = cursor + 3
        if limit ~= '' then
            local cap = tonumber(limit)
            local used = (tonumber(redis.call('hget', KEYS[i], name)) or 0)
                + (tonumber(redis.call('hget', KEYS[i], 'reserved_' .. name)) or 0)
            if used >= cap or used + amount > cap then
                return i
            end
        end
        fields[#fields + 1] = {name, text, amount}
    end
    plan[i] = fields
end
for i = 1, #KEYS do
    for _, field in ipairs(plan[i]) do
        if field[3] ~= 0 then
            redis.call('hincrbyfloat', KEYS[i], 'reserved_' .. field[1], field[2])
        end
    end
    redis.call('pexpire', KEYS[i], ttl, 'NX')
end
return 0
"""

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
