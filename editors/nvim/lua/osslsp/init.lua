--- osslsp for Neovim: starts `osslsp serve` for source buffers, shows its suggestions as ghost
--- text, and adds :OsslspExplain, :OsslspGenerate, :OsslspPrompt, :OsslspStatus and
--- :checkhealth osslsp.
---
---   require("osslsp").setup({ settings = { model = "openai/gpt-oss-20b" } })

local commands = require("osslsp.commands")
local compat = require("osslsp.compat")
local config = require("osslsp.config")
local explain = require("osslsp.explain")

local M = {}

local api = vim.api

--- The options in effect (defaults until setup() runs); read by the health check.
M.options = config.resolve(nil)

--- The ghost text implementation for the options on this Neovim, or nil when it is off.
---@param options osslsp.Options
---@return table|nil, string  the module and its name
function M.inline_backend(options)
  local mode = options.inline_completion
  if mode == false then
    return nil, "off"
  end
  if mode ~= "fallback" and compat.native_inline_completion() then
    return require("osslsp.native"), "native"
  end
  return require("osslsp.ghost"), "fallback"
end

--- Buffer-local insert-mode keys for accept / next / dismiss; each falls back to the key itself
--- when there is no suggestion to act on.
local function map_keys(bufnr, backend, keymaps)
  for action, lhs in pairs(keymaps) do
    if lhs then
      vim.keymap.set("i", lhs, function()
        return backend[action](bufnr) and "" or lhs
      end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = "osslsp: " .. action .. " suggestion" })
    end
  end
end

--- The ghost text implementation serving each buffer osslsp is attached to.
---@type table<integer, table>
local backends = {}

local function on_attach(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  if not client or client.name ~= "osslsp" then
    return
  end
  local backend, name = M.inline_backend(M.options)
  if not backend then
    return
  end
  if name == "native" then
    backend.attach(args.buf)
  else
    backend.attach(args.buf, client.id, M.options.debounce)
  end
  backends[args.buf] = backend
  api.nvim_create_autocmd("BufWipeout", {
    buffer = args.buf, once = true,
    callback = function() backends[args.buf] = nil end,
  })
  map_keys(args.buf, backend, M.options.keymaps)
end

--- For mappings of your own (keymaps = false): act on the suggestion in the current buffer.
--- Each returns false when there is none to act on, so that your key can do something else.
---@return boolean
function M.accept()
  local bufnr = api.nvim_get_current_buf()
  return backends[bufnr] ~= nil and backends[bufnr].accept(bufnr)
end

---@return boolean
function M.next()
  local bufnr = api.nvim_get_current_buf()
  return backends[bufnr] ~= nil and backends[bufnr].next(bufnr)
end

---@return boolean
function M.dismiss()
  local bufnr = api.nvim_get_current_buf()
  return backends[bufnr] ~= nil and backends[bufnr].dismiss(bufnr)
end

local function handlers()
  return {
    ["osslsp/status"] = commands.on_status,
    ["osslsp/explanation"] = explain.on_notification,
  }
end

--- Start the client: vim.lsp.config/enable on 0.11+, vim.lsp.start on FileType on 0.10.
local function start_client(client_config, group)
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config("osslsp", client_config)
    vim.lsp.enable("osslsp")
    return
  end
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = client_config.filetypes or "*",
    callback = function(args)
      if vim.bo[args.buf].buftype ~= "" then
        return -- help, terminals, scratch buffers: no file to complete
      end
      local start = vim.tbl_extend("force", client_config, {
        root_dir = vim.fs.root(args.buf, client_config.root_markers),
      })
      start.root_markers, start.filetypes = nil, nil
      vim.lsp.start(start, { bufnr = args.buf })
    end,
  })
end

--- Configure and start osslsp. Options (all optional; see `config.lua` and README.md):
--- cmd, filetypes, root_markers, settings, keymaps = {accept, next, dismiss}, inline_completion, debounce.
---@param user table|nil
function M.setup(user)
  local options, warnings = config.resolve(user)
  for _, warning in ipairs(warnings) do
    vim.notify(warning, vim.log.levels.WARN)
  end
  if options.inline_completion == "native" and not compat.native_inline_completion() then
    vim.notify("osslsp: inline_completion = \"native\" needs Neovim 0.12+; using the plugin's ghost text",
      vim.log.levels.WARN)
  end
  M.options = options
  if vim.fn.executable(options.cmd[1]) == 0 then
    vim.notify(("osslsp: %q is not an executable on PATH: install osslsp (pip install osslsp) or set cmd"):format(
      options.cmd[1]), vim.log.levels.ERROR)
  end
  local group = api.nvim_create_augroup("osslsp", { clear = true })
  api.nvim_create_autocmd("LspAttach", { group = group, callback = on_attach })
  local client_config = config.client_config(options)
  client_config.handlers = handlers()
  start_client(client_config, group)
  commands.create()
end

--- The last `osslsp/status` ({state, message}) for statuslines; nil before the server sent one.
function M.status()
  return commands.last_status
end

return M
