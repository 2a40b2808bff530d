--- What every Neovim test script shares: its inputs from the environment, a coroutine that can
--- wait for the editor without blocking it (typed keys, timers and LSP messages keep flowing),
--- a watchdog, and the JSON result file the Python test reads.
---
--- Environment: OSSLSP_NVIM_RESULT (where to write the result), OSSLSP_NVIM_OPTIONS (JSON options
--- for require("osslsp").setup), OSSLSP_NVIM_PLAN (JSON: the files and places a script works on),
--- OSSLSP_NVIM_TIMEOUT_MS (the watchdog).

local H = {}

H.result = { notifications = {} }
H.options = vim.json.decode(os.getenv("OSSLSP_NVIM_OPTIONS") or "{}")
H.plan = vim.json.decode(os.getenv("OSSLSP_NVIM_PLAN") or "{}")
local result_path = assert(os.getenv("OSSLSP_NVIM_RESULT"), "OSSLSP_NVIM_RESULT is not set")
local timeout_ms = tonumber(os.getenv("OSSLSP_NVIM_TIMEOUT_MS") or "45000")
local finished = false
local started = vim.uv.now()

-- Keep what the plugin and the server tell the user (window/showMessage goes through vim.notify).
vim.notify = function(message, level)
  table.insert(H.result.notifications, { message = tostring(message), level = level })
end

--- Write the result and quit Neovim (once).
function H.finish(fields)
  if finished then
    return
  end
  finished = true
  for key, value in pairs(fields or {}) do
    H.result[key] = value
  end
  local file = assert(io.open(result_path, "w"))
  file:write(vim.json.encode(H.result))
  file:close()
  vim.schedule(function()
    vim.cmd("qa!")
  end)
end

--- Run `body` as a coroutine; an error in it ends the test with that error.
function H.run(body)
  vim.defer_fn(function()
    H.finish({ error = ("watchdog: the script did not finish within %d ms"):format(timeout_ms) })
  end, timeout_ms)
  local co = coroutine.create(function()
    body()
    H.finish()
  end)
  local function resume(...)
    local ok, err = coroutine.resume(co, ...)
    if not ok then
      H.finish({ error = debug.traceback(co, err) })
    end
  end
  H._resume = resume
  vim.schedule(resume)
end

--- Wait (inside H.run) until `condition()` returns a truthy value, polling every 20 ms while the
--- editor runs on; raises after `ms` milliseconds, naming `what`, or at once when `condition` raises.
function H.wait(condition, ms, what)
  local deadline = vim.uv.now() + ms
  local resume = H._resume
  local function poll()
    local ok, value = pcall(condition)
    if not ok then
      resume(false, ("%s failed: %s"):format(what, tostring(value)))
    elseif value then
      resume(true, value)
    elseif vim.uv.now() >= deadline then
      resume(false, ("timed out after %d ms waiting for %s"):format(ms, what))
    else
      vim.defer_fn(poll, 20)
    end
  end
  vim.defer_fn(poll, 0)
  local ok, value = coroutine.yield()
  if not ok then
    error(value, 2)
  end
  H.result.timeline = H.result.timeline or {}
  table.insert(H.result.timeline, { what = what, ms = vim.uv.now() - started })
  return value
end

--- Let the editor run for `ms` milliseconds.
function H.sleep(ms)
  local resume = H._resume
  vim.defer_fn(function() resume(true, true) end, ms)
  coroutine.yield()
end

--- Type keys as a user would (mappings apply).
function H.type(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "m", false)
end

--- Set the plugin up with the test's options, open `file` and wait until the server says it is
--- ready; the client.
function H.start_server(file)
  require("osslsp").setup(H.options)
  vim.cmd.edit(vim.fn.fnameescape(file))
  local status = H.wait(function()
    local status = require("osslsp").status()
    return status and (status.state == "ready" or status.state == "error") and status
  end, 40000, "osslsp/status ready")
  H.result.status = status
  if status.state ~= "ready" then
    error("the server did not get ready: " .. vim.inspect(status))
  end
  return vim.lsp.get_clients({ name = "osslsp", bufnr = 0 })[1]
end

--- Run one part of a script: what it returns goes to result[name], an error it raises to
--- result[name].error; the next part runs either way.
function H.part(name, body)
  local ok, value = pcall(body)
  H.result[name] = ok and value or { error = tostring(value) }
end

function H.buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), "\n")
end

return H
