-- Prepended to every script (queue and admission gate) when the scripts are loaded.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Plain decimal digits: tostring() would print large numbers in exponent form and lose digits.
local function int(n)
  return string.format('%.0f', n)
end
