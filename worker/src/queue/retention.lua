-- One bounded step of deleting finished jobs (apalis' vacuum.lua reads every job in one call instead).
-- apalis keeps finished ids in an unordered set, so this step first moves at most ARGV[2] of them into our
-- own sorted set, scored by the `done_at` apalis wrote in each job's meta hash; then it deletes the data
-- and meta of at most ARGV[2] jobs finished at or before ARGV[1]. Both halves are O(ARGV[2] log n).
-- KEYS[1]: apalis' done set   KEYS[2]: our finished-by-time sorted set
-- KEYS[3]: apalis' job data hash   KEYS[4]: apalis' meta key prefix
-- ARGV[1]: cutoff, unix seconds   ARGV[2]: the most ids per half
-- Returns {moved, deleted}.
local limit = tonumber(ARGV[2])
local moved = redis.call("spop", KEYS[1], limit)
for _, id in ipairs(moved) do
    local done_at = tonumber(redis.call("hget", KEYS[4] .. ":" .. id, "done_at")) or 0
    redis.call("zadd", KEYS[2], done_at, id)
end
local expired = redis.call("zrangebyscore", KEYS[2], "-inf", ARGV[1], "LIMIT", 0, limit)
for _, id in ipairs(expired) do
    redis.call("hdel", KEYS[3], id)
    redis.call("del", KEYS[4] .. ":" .. id)
end
if #expired > 0 then
    redis.call("zrem", KEYS[2], unpack(expired))
end
return {#moved, #expired}
