--- The user commands: each calls one of the server's workspace/executeCommand commands
--- (protocol.md) for the current buffer and shows what comes back.

local compat = require("osslsp.compat")
local explain = require("osslsp.explain")

local M = {}

local api = vim.api

--- The last `osslsp/status` notification: {state, message}.
M.last_status = nil

local function notify(message, level)
  vim.notify("osslsp: " .. message, level or vim.log.levels.INFO)
end

--- The osslsp client attached to a buffer, or nil after telling the user why there is none.
---@param bufnr integer
function M.client(bufnr)
  local client = vim.lsp.get_clients({ name = "osslsp", bufnr = bufnr })[1]
  if not client then
    notify(("not attached to this buffer (filetype %q); see :checkhealth osslsp"):format(vim.bo[bufnr].filetype),
      vim.log.levels.WARN)
  end
  return client
end

--- Run a server command; `on_result` gets the result, errors are shown to the user.
local function execute(client, bufnr, command, arguments, on_result, on_error)
  compat.request(client, "workspace/executeCommand", { command = command, arguments = arguments },
    function(err, result)
      if err then
        local message = ("%s failed: %s"):format(command, err.message or vim.inspect(err))
        if on_error then
          on_error(message)
        end
        notify(message, vim.log.levels.ERROR)
        return
      end
      if on_result then
        on_result(result)
      end
    end, bufnr)
end

--- `osslsp/status` handler: remember the state and tell statuslines (User OsslspStatus).
function M.on_status(_, params)
  if type(params) ~= "table" then
    return
  end
  M.last_status = { state = params.state, message = params.message }
  api.nvim_exec_autocmds("User", { pattern = "OsslspStatus", modeline = false, data = M.last_status })
end

--- The LSP range of lines line1..line2 (1-based, inclusive), or of the visual selection when the
--- command was given one charwise.
local function command_range(bufnr, opts, encoding)
  local first, last = opts.line1 - 1, opts.line2 - 1
  local start_col, end_col = 0, nil
  local vstart, vend = api.nvim_buf_get_mark(bufnr, "<"), api.nvim_buf_get_mark(bufnr, ">")
  if opts.range == 2 and vim.fn.visualmode() == "v" and vstart[1] - 1 == first and vend[1] - 1 == last then
    start_col = vstart[2]
    local line = api.nvim_buf_get_lines(bufnr, last, last + 1, false)[1] or ""
    local char = vim.fn.strcharpart(line:sub(vend[2] + 1), 0, 1)
    end_col = math.min(vend[2] + #char, #line)
  end
  local first_line = api.nvim_buf_get_lines(bufnr, first, first + 1, false)[1] or ""
  local last_line = api.nvim_buf_get_lines(bufnr, last, last + 1, false)[1] or ""
  return {
    start = { line = first, character = compat.units(first_line:sub(1, start_col), encoding) },
    ["end"] = { line = last, character = compat.units(last_line:sub(1, end_col or #last_line), encoding) },
  }
end

--- :OsslspExplain: explain the range; the text streams into a float (explain.lua).
function M.explain(opts)
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return
  end
  local uri = vim.uri_from_bufnr(bufnr)
  local range = command_range(bufnr, opts, client.offset_encoding)
  explain.open(uri)
  execute(client, bufnr, "osslsp.explain", { uri, range }, nil, function(message)
    explain.fail(uri, message)
  end)
end

--- :OsslspGenerate: write the body of the function whose docstring stub is at the cursor.
--- The server edits the buffer through workspace/applyEdit, which Neovim applies itself.
function M.generate()
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return
  end
  notify("generating…")
  execute(client, bufnr, "osslsp.generate", { vim.uri_from_bufnr(bufnr), compat.cursor_position(client.offset_encoding) })
end

--- :OsslspPrompt: the exact prompt the model would read for a completion here, in a scratch buffer.
function M.prompt()
  local bufnr = api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return
  end
  local arguments = { vim.uri_from_bufnr(bufnr), compat.cursor_position(client.offset_encoding) }
  execute(client, bufnr, "osslsp.showPrompt", arguments, function(result)
    vim.cmd("botright new")
    local scratch = api.nvim_get_current_buf()
    vim.bo[scratch].buftype, vim.bo[scratch].bufhidden, vim.bo[scratch].swapfile = "nofile", "wipe", false
    api.nvim_buf_set_lines(scratch, 0, -1, false, vim.split(result.prompt or "", "\n", { plain = true }))
    vim.bo[scratch].modifiable = false
    vim.b[scratch].osslsp_prompt_tokens = result.promptTokens
    pcall(api.nvim_buf_set_name, scratch, ("osslsp://prompt/%d"):format(scratch))
    notify(("prompt of %s tokens"):format(tostring(result.promptTokens)))
  end)
end

local function describe(status)
  local lines = { ("%s%s"):format(status.state or "?", status.message and status.message ~= "" and (": " .. status.message) or "") }
  for _, key in ipairs({ "model", "device", "memory" }) do
    local value = status[key]
    if type(value) == "table" then
      local parts = {}
      for name, amount in pairs(value) do
        table.insert(parts, ("%s %s"):format(name, tostring(amount)))
      end
      table.sort(parts)
      value = #parts > 0 and table.concat(parts, ", ") or nil
    end
    if value ~= nil and value ~= vim.NIL then
      table.insert(lines, ("%s: %s"):format(key, tostring(value)))
    end
  end
  return table.concat(lines, "\n")
end

--- :OsslspStatus: the server's state, model, device and memory (osslsp.status); without a
--- client here, the last status notification.
function M.status()
  local bufnr = api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ name = "osslsp", bufnr = bufnr })[1]
    or vim.lsp.get_clients({ name = "osslsp" })[1]
  if not client then
    notify(M.last_status and describe(M.last_status) or "not running")
    return
  end
  execute(client, bufnr, "osslsp.status", {}, function(result)
    M.last_result = result
    notify(describe(result or {}))
  end)
end

--- Define the :Osslsp* commands.
function M.create()
  api.nvim_create_user_command("OsslspExplain", M.explain,
    { range = true, desc = "osslsp: explain the selected lines" })
  api.nvim_create_user_command("OsslspGenerate", M.generate,
    { desc = "osslsp: write the function body from the docstring at the cursor" })
  api.nvim_create_user_command("OsslspPrompt", M.prompt,
    { desc = "osslsp: show the model's prompt for a completion at the cursor" })
  api.nvim_create_user_command("OsslspStatus", M.status, { desc = "osslsp: show the server's state" })
end

return M
