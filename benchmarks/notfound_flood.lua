-- wrk script: a flood of distinct paths that match no route and no file (a scanner, or broken links):
-- /no-such-page-1.html, /no-such-page-2.html, ... one new path per request, so no per-path cache
-- can answer twice. Each wrk thread counts on its own; the harness runs one thread.
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format(nil, "/no-such-page-" .. counter .. ".html")
end
