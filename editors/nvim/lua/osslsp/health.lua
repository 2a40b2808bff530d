--- `:checkhealth osslsp`: Neovim's version, the server executable, and `osslsp doctor` for the
--- configured model (model found, torch, GPU, grammars), each problem with its fix.

local config = require("osslsp.config")

local M = {}

local health = vim.health
local DOCTOR_TIMEOUT_MS = 60000

--- One `osslsp doctor` check: "[ok] what" or "[!!] what" with an optional "fix: ..." line after it.
---@class osslsp.DoctorCheck
---@field ok boolean
---@field what string
---@field fix string|nil

--- Parse `osslsp doctor` output into its checks.
---@param output string
---@return osslsp.DoctorCheck[]
function M.parse_doctor(output)
  local checks = {}
  for line in vim.gsplit(output, "\n", { plain = true }) do
    local mark, what = line:match("^%[(%S%S)%] (.*)$")
    local fix = line:match("^%s+fix: (.*)$")
    if mark then
      table.insert(checks, { ok = mark == "ok", what = what })
    elseif fix and #checks > 0 then
      checks[#checks].fix = fix
    end
  end
  return checks
end

--- GPU memory is judged against gpt-oss-20b: a smaller model runs without it, so it only warns.
local function is_gpu_check(what)
  return what:match("^GPU") or what:match("^CUDA") or what:match("^cuda:")
end

local function report(check)
  if check.ok then
    health.ok(check.what)
  elseif is_gpu_check(check.what) then
    health.warn(check.what, check.fix and { check.fix } or nil)
  else
    health.error(check.what, check.fix and { check.fix } or nil)
  end
end

local function check_neovim()
  health.start("Neovim")
  if vim.fn.has("nvim-0.10") == 0 then
    health.error("osslsp needs Neovim 0.10 or newer", { "upgrade Neovim" })
    return
  end
  local _, backend = require("osslsp").inline_backend(require("osslsp").options)
  local what = { native = "Neovim's vim.lsp.inline_completion", fallback = "the plugin's own ghost text", off = "off" }
  health.ok(("Neovim %s; inline completion: %s"):format(tostring(vim.version()), what[backend]))
end

---@return boolean true when the executable was found
local function check_executable(options)
  health.start("osslsp server")
  local executable = vim.fn.exepath(options.cmd[1])
  if executable == "" then
    health.error(("%q not found on PATH"):format(options.cmd[1]),
      { "pip install osslsp (in the Python Neovim can see), or set cmd in setup()" })
    return false
  end
  health.ok(("server: %s (cmd = %s)"):format(executable, table.concat(options.cmd, " ")))
  local clients = vim.lsp.get_clients({ name = "osslsp" })
  local status = require("osslsp").status()
  if #clients == 0 then
    health.info("no osslsp client is running (open a file"
      .. (options.filetypes and (" of one of: " .. table.concat(options.filetypes, ", ")) or "") .. ")")
  elseif status then
    local say = status.state == "error" and health.error or health.ok
    say(("running; state %s: %s"):format(tostring(status.state), tostring(status.message)))
  else
    health.info("running; no status yet")
  end
  return true
end

local function check_doctor(options)
  local cmd = config.doctor_cmd(options)
  health.start("osslsp doctor (" .. table.concat(cmd, " ") .. ")")
  local ok, process = pcall(vim.system, cmd, { text = true })
  if not ok then
    health.error("could not run osslsp doctor: " .. tostring(process))
    return
  end
  local result = process:wait(DOCTOR_TIMEOUT_MS)
  if result.code == 124 then -- vim.system's code for a process killed at the timeout
    health.error(("osslsp doctor did not finish within %d s"):format(DOCTOR_TIMEOUT_MS / 1000))
    return
  end
  local checks = M.parse_doctor(result.stdout or "")
  if #checks == 0 then
    health.error("osslsp doctor printed no checks: " .. vim.trim((result.stderr or "") .. (result.stdout or "")))
    return
  end
  local model_checked = false
  for _, check in ipairs(checks) do
    model_checked = model_checked or check.what:match("^model ") ~= nil
    report(check)
  end
  if not model_checked then
    health.error("osslsp doctor did not check a model: " .. vim.trim(result.stderr or ""))
  end
end

function M.check()
  local options = require("osslsp").options
  check_neovim()
  if check_executable(options) then
    check_doctor(options)
  end
end

return M
