-- wrk script for the HTTP API: SES v2 SendEmail with Simple content of
-- about 5 KB, "Authorization: Bearer $MTA_API_SECRET", keep-alive.
--   MTA_API_SECRET=s wrk -t2 -c50 -d10s --latency -s bench/http_send.lua http://127.0.0.1:PORT
-- Any non-200 answer is counted and reported at the end.
local secret = os.getenv("MTA_API_SECRET") or "bench-secret-0123456789"
local size = tonumber(os.getenv("SIZE") or "5120")
local line = string.rep("x", 76) .. "\\n"
local text = string.rep(line, math.max(1, math.floor(size / 77)))
wrk.method = "POST"
wrk.path = "/v2/email/outbound-emails"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. secret
wrk.body = '{"FromEmailAddress": "bench@src.test", ' ..
  '"Destination": {"ToAddresses": ["rcpt@dst.test"]}, ' ..
  '"Content": {"Simple": {"Subject": {"Data": "wrk bench"}, ' ..
  '"Body": {"Text": {"Data": "' .. text .. '"}}}}}'

local failed = 0
function response(status, headers, body)
  if status ~= 200 then failed = failed + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %.1f/s, p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms, errors %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
