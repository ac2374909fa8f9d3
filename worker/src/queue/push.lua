-- Writes jobs in apalis-redis' layout (a payload in the data hash, a meta hash per job, the id on the active
-- list), unless Redis runs this after ARGV[1], a deadline in unix ms on Redis' own clock: a push that the
-- producer gave up on, and answered 503 for, must not be written later by a Redis that stalled and resumed
-- with the command still in its input buffer. Jobs go straight onto the active list: nothing needs
-- promoting after a push.
-- KEYS[1]: job data hash   KEYS[2]: active list   KEYS[3]: signal list   KEYS[4]: meta key prefix
-- ARGV[1]: the deadline; then per job: id, payload, attempts, max attempts, metadata (a JSON object)
-- Returns {jobs written, or -1 when refused; Redis' time in ms}.
local clock = redis.call("TIME")
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now_ms > tonumber(ARGV[1]) then
    return {-1, now_ms}
end

local function meta_fields(attempts, max_attempts, metadata)
    local fields = {"attempts", tonumber(attempts), "max_attempts", tonumber(max_attempts),
                    "status", "Pending", "idempotency_key", ""}
    local ok, extra = pcall(cjson.decode, metadata)
    if ok and type(extra) == "table" then
        for field, value in pairs(extra) do
            if type(value) == "table" then
                value = cjson.encode(value)
            end
            fields[#fields + 1] = field
            fields[#fields + 1] = tostring(value)
        end
    end
    return fields
end

local written = 0
for i = 2, #ARGV, 5 do
    local id = ARGV[i]
    -- A job id already present (a retried push whose first answer was lost) is not written twice.
    if redis.call("hsetnx", KEYS[1], id, ARGV[i + 1]) == 1 then
        redis.call("hset", KEYS[4] .. ":" .. id, unpack(meta_fields(ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])))
        redis.call("rpush", KEYS[2], id)
        written = written + 1
    end
end
if written > 0 then
    redis.call("del", KEYS[3])
    redis.call("lpush", KEYS[3], 1)
end
return {written, now_ms}
