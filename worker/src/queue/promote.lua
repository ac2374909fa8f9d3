-- Moves due jobs from apalis' scheduled set to its active list, at most ARGV[2] at a time.
-- apalis' own fetch promotes every due job with one `unpack`, which fails once ~8,000 are due; keeping the
-- scheduled set small (promoting right after each push, and sweeping periodically) keeps that path safe.
-- KEYS[1]: scheduled jobs sorted set   KEYS[2]: active jobs list   KEYS[3]: signal list
-- ARGV[1]: now, unix seconds           ARGV[2]: the most ids to move
local ids = redis.call("zrangebyscore", KEYS[1], 0, ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #ids == 0 then
    return 0
end
redis.call("rpush", KEYS[2], unpack(ids))
redis.call("zrem", KEYS[1], unpack(ids))
redis.call("del", KEYS[3])
redis.call("lpush", KEYS[3], 1)
return #ids
