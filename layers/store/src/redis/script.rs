//! The Lua scripts that make every write one atomic step on the server.
//!
//! A record is a hash: `v` version, `a` absolute deadline (server time, Unix
//! milliseconds), `i` idle timeout (milliseconds), `d` encoded data. Each
//! script answers `{code, version}`: `1` done, `0` conflict (`version` is the
//! stored one, `0` when there is none), `-1` the record is not one of ours
//! and was left untouched: a wrong type, a missing field, or data that is
//! not our format byte followed by valid MessagePack (checked with the
//! `cmsgpack` library built into Redis' Lua).

use deadpool_redis::redis::Script;

/// Helpers prepended to every script.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function record(key)
  local r = redis.pcall('HMGET', key, 'v', 'a', 'i', 'd')
  if r['err'] then return false end -- not a hash
  if not r[1] and not r[2] and not r[3] and not r[4] then
    if redis.call('EXISTS', key) == 0 then return nil end
    return false
  end
  local v, a, i, d = tonumber(r[1]), tonumber(r[2]), tonumber(r[3]), r[4]
  if not v or not a or not i or not d or string.byte(d, 1) ~= 1 then return false end
  if not pcall(cmsgpack.unpack, string.sub(d, 2)) then return false end
  return {v, a, i}
end
local function int(n) return string.format('%d', n) end
"#;

/// KEYS: key. ARGV: data, idle ms, absolute ms. Answers 1, or 0 if the key
/// is taken.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local now = now_ms()
local idle = tonumber(ARGV[2])
local abs = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'v', '1', 'a', int(abs), 'i', int(idle), 'd', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], int(math.min(now + idle, abs)))
return {1, 1}
"#;

/// KEYS: key. ARGV: expected version, data.
const SAVE: &str = r#"
local r = record(KEYS[1])
if r == nil then return {0, 0} end
if r == false then return {-1, 0} end
if r[1] ~= tonumber(ARGV[1]) then return {0, r[1]} end
local now = now_ms()
if now >= r[2] then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
local v = r[1] + 1
redis.call('HSET', KEYS[1], 'v', int(v), 'd', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], int(math.min(now + r[3], r[2])))
return {1, v}
"#;

/// KEYS: key. ARGV: idle ms.
const TOUCH: &str = r#"
local r = record(KEYS[1])
if r == nil then return {0, 0} end
if r == false then return {-1, 0} end
local now = now_ms()
local idle = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'i', int(idle))
redis.call('PEXPIREAT', KEYS[1], int(math.min(now + idle, r[2])))
return {1, r[1]}
"#;

/// KEYS: key. ARGV: expected version, or an empty string for any.
const DELETE: &str = r#"
local r = record(KEYS[1])
if r == nil then return {0, 0} end
if r == false then return {-1, 0} end
if ARGV[1] ~= '' and r[1] ~= tonumber(ARGV[1]) then return {0, r[1]} end
redis.call('DEL', KEYS[1])
return {1, r[1]}
"#;

/// The compiled scripts (their SHA-1 is computed once).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) save: Script,
    pub(crate) touch: Script,
    pub(crate) delete: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            create: with_prelude(CREATE),
            save: with_prelude(SAVE),
            touch: with_prelude(TOUCH),
            delete: with_prelude(DELETE),
        }
    }
}
