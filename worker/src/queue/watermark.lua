-- The oldest job this queue has not finished: waiting on the active list, scheduled for a retry, or in
-- flight with a worker (a killed worker's jobs stay in its set until they are handed on). Job ids are
-- ULIDs, which sort by the time they were made, so the smallest id is the oldest job.
-- KEYS[1]: active list   KEYS[2]: scheduled set   KEYS[3]: workers set
-- ARGV[1]: in-flight set prefix   ARGV[2]: the most ids to read from one list or set
-- Returns {state, id}: {"clear"}, {"oldest", id}, or {"unknown"} when a list is too long to read cheaply.
local limit = tonumber(ARGV[2])
local oldest = false
local function consider(ids)
    for _, id in ipairs(ids) do
        if not oldest or id < oldest then
            oldest = id
        end
    end
end
-- Jobs handed on from a dead worker join the active list at its tail: read the whole list.
if redis.call("llen", KEYS[1]) > limit or redis.call("zcard", KEYS[2]) > limit then
    return {"unknown"}
end
consider(redis.call("lrange", KEYS[1], 0, -1))
consider(redis.call("zrange", KEYS[2], 0, -1))
for _, worker in ipairs(redis.call("zrange", KEYS[3], 0, -1)) do
    consider(redis.call("smembers", ARGV[1] .. ":" .. worker))
end
if oldest then
    return {"oldest", oldest}
end
return {"clear"}
