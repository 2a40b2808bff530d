--- The plugin's options: defaults, checks, and the LSP client configuration built from them.
--- Bad options are reported and replaced by their defaults, so that a typo never stops the server.

local M = {}

M.ROOT_MARKERS = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", "pom.xml" }

---@class osslsp.Keymaps
---@field accept string|false accept the ghost text (falls back to the key itself when none is shown)
---@field next string|false show the next suggestion
---@field dismiss string|false hide the ghost text

---@class osslsp.Options
---@field cmd string[] the server's command line
---@field filetypes string[]|false filetypes the server attaches to; false: every file (the server
--- knows which languages it has a grammar for and completes the rest as plain text)
---@field root_markers string[] files that mark a workspace root
---@field settings table server settings, camelCase as in protocol.md (model, maxNewTokens, ...)
---@field keymaps osslsp.Keymaps insert-mode keys, buffer-local to buffers osslsp is attached to
---   (false: none; map require("osslsp").accept/next/dismiss yourself)
---@field inline_completion "auto"|"native"|"fallback"|false ghost text: Neovim's own on 0.12+, ours otherwise
---@field debounce integer milliseconds of quiet typing before the fallback asks for a suggestion
M.defaults = {
  cmd = { "osslsp", "serve" },
  filetypes = false,
  root_markers = M.ROOT_MARKERS,
  settings = {},
  keymaps = { accept = "<Tab>", next = "<M-]>", dismiss = "<C-]>" },
  inline_completion = "auto",
  debounce = 150,
}

local function is_string_list(value)
  if type(value) ~= "table" or (next(value) ~= nil and not vim.islist(value)) then
    return false
  end
  for _, item in ipairs(value) do
    if type(item) ~= "string" then
      return false
    end
  end
  return true
end

--- Each option's check, and what a good value looks like (for the warning).
local CHECKS = {
  cmd = { function(v) return is_string_list(v) and #v > 0 end, "a non-empty list of strings" },
  filetypes = { function(v) return v == false or is_string_list(v) end, "a list of strings or false" },
  root_markers = { is_string_list, "a list of strings" },
  settings = { function(v) return type(v) == "table" and (next(v) == nil or not vim.islist(v)) end,
    "a table of camelCase server settings" },
  keymaps = { function(v) return v == false or type(v) == "table" end, "a table {accept, next, dismiss} or false" },
  inline_completion = { function(v) return v == false or v == "auto" or v == "native" or v == "fallback" end,
    '"auto", "native", "fallback" or false' },
  debounce = { function(v) return type(v) == "number" and v >= 0 end, "a number of milliseconds >= 0" },
}

--- Options merged over the defaults, and one warning per option that was ignored.
---@param user table|nil
---@return osslsp.Options, string[]
function M.resolve(user)
  local options = vim.deepcopy(M.defaults)
  local warnings = {}
  if user ~= nil and type(user) ~= "table" then
    return options, { "osslsp: setup() takes a table of options; using the defaults" }
  end
  for key, value in pairs(user or {}) do
    local check = CHECKS[key]
    if not check then
      table.insert(warnings, ("osslsp: unknown option %q ignored"):format(tostring(key)))
    elseif not check[1](value) then
      table.insert(warnings, ("osslsp: option %s must be %s; using the default"):format(key, check[2]))
    elseif key == "keymaps" and value == false then
      options.keymaps = { accept = false, next = false, dismiss = false }
    elseif key == "keymaps" then
      for action, lhs in pairs(value) do
        if options.keymaps[action] == nil then
          table.insert(warnings, ("osslsp: unknown keymap %q ignored"):format(tostring(action)))
        elseif lhs ~= false and type(lhs) ~= "string" then
          table.insert(warnings, ("osslsp: keymaps.%s must be a key or false; using the default"):format(action))
        else
          options.keymaps[action] = lhs
        end
      end
    else
      options[key] = vim.deepcopy(value)
    end
  end
  return options, warnings
end

--- A table that JSON-encodes as an object even when empty (`{}` alone encodes as a list).
local function object(value)
  return next(value) == nil and vim.empty_dict() or value
end

--- The model the server will load: the `model` setting wins over `--model` on the command line.
---@param options osslsp.Options
---@return string|nil
function M.model(options)
  if type(options.settings.model) == "string" then
    return options.settings.model
  end
  for index, arg in ipairs(options.cmd) do
    if arg == "--model" then
      return options.cmd[index + 1]
    end
    local value = arg:match("^%-%-model=(.+)$")
    if value then
      return value
    end
  end
  return nil
end

--- The `osslsp doctor` command line that checks the same model: the serve command with
--- `doctor --model M` in place of `serve ...`.
---@param options osslsp.Options
---@return string[]
function M.doctor_cmd(options)
  local cmd = {}
  for _, arg in ipairs(options.cmd) do
    if arg == "serve" then
      break
    end
    table.insert(cmd, arg)
  end
  table.insert(cmd, "doctor")
  local model = M.model(options)
  if model then
    vim.list_extend(cmd, { "--model", model })
  end
  return cmd
end

--- The fields of a Neovim LSP client configuration (shared by vim.lsp.config and vim.lsp.start).
--- Settings go both as initializationOptions (with explanationNotifications, as protocol.md
--- asks of clients that render osslsp/explanation) and as section "osslsp" for workspace/configuration.
---@param options osslsp.Options
---@return table
function M.client_config(options)
  local init_options = vim.deepcopy(options.settings)
  init_options.explanationNotifications = true
  return {
    name = "osslsp",
    cmd = options.cmd,
    filetypes = options.filetypes or nil,
    root_markers = options.root_markers,
    init_options = init_options,
    settings = { osslsp = object(vim.deepcopy(options.settings)) },
    -- Positions in UTF-16, as the server counts them (Neovim offers UTF-8 first, and pygls
    -- takes the client's first choice).
    capabilities = { general = { positionEncodings = { "utf-16" } } },
  }
end

return M
