--- Ghost text for Neovim 0.10/0.11, which have no inline completion of their own: ask the server
--- for textDocument/inlineCompletion after a pause in typing, show the suggestion as virtual text
--- at the cursor, and accept, cycle or dismiss it. On 0.12+ `native.lua` uses Neovim's own instead.

local compat = require("osslsp.compat")

local M = {}

local api = vim.api
local namespace = api.nvim_create_namespace("osslsp.ghost")
local AUTOMATIC = 2 -- InlineCompletionTriggerKind.Automatic

local function define_highlight()
  api.nvim_set_hl(0, "OsslspGhostText", { link = "Comment", default = true })
end
define_highlight()
-- A colorscheme clears highlight groups it does not define.
api.nvim_create_autocmd("ColorScheme", { group = api.nvim_create_augroup("osslsp.ghost", { clear = true }),
  callback = define_highlight })

---@class osslsp.GhostState
---@field client_id integer
---@field items table[] the server's InlineCompletionItems
---@field index integer which one is shown
---@field row integer 0-based cursor row the items were asked for
---@field col integer byte column of the cursor they were asked for
---@field tick integer the buffer's changedtick they were asked for
---@field request_id integer|nil the request in flight
---@field timer uv.uv_timer_t|nil the debounce timer

---@type table<integer, osslsp.GhostState>
local states = {}

local function text_of(item)
  local text = item.insertText
  return type(text) == "table" and text.value or text or ""
end

local function hide(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  end
end

local function stop_timer(state)
  if state.timer then
    state.timer:stop()
    state.timer:close()
    state.timer = nil
  end
end

--- Forget the suggestion and any request in flight.
local function reset(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  stop_timer(state)
  local client = vim.lsp.get_client_by_id(state.client_id)
  if client and state.request_id then
    compat.cancel_request(client, state.request_id)
  end
  state.request_id, state.items = nil, {}
  hide(bufnr)
end

--- The part of an item still to be typed: its range may start before the cursor (text the user
--- already typed), which must match; nil when the item does not fit the line any more.
local function remaining_text(bufnr, state, item)
  local text = text_of(item)
  if not item.range then
    return text
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  local encoding = client and client.offset_encoding or "utf-16"
  local line = api.nvim_buf_get_lines(bufnr, state.row, state.row + 1, false)[1] or ""
  if item.range.start.line ~= state.row then
    return nil
  end
  local start = compat.byte_col(line, item.range.start.character, encoding)
  local typed = line:sub(start + 1, state.col)
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  return text:sub(#typed + 1)
end

local function show(bufnr)
  hide(bufnr)
  local state = states[bufnr]
  local item = state and state.items[state.index]
  local text = item and remaining_text(bufnr, state, item)
  if not text or text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local virt_lines = {}
  for index = 2, #lines do
    table.insert(virt_lines, { { lines[index], "OsslspGhostText" } })
  end
  api.nvim_buf_set_extmark(bufnr, namespace, state.row, state.col, {
    virt_text = { { lines[1], "OsslspGhostText" } },
    virt_text_pos = "inline",
    virt_lines = virt_lines,
    hl_mode = "combine",
  })
end

--- True when the suggestion was asked for where the cursor still is, in the same text.
local function current(bufnr, state)
  local row, col = unpack(api.nvim_win_get_cursor(0))
  return api.nvim_get_current_buf() == bufnr and row - 1 == state.row and col == state.col
    and api.nvim_buf_get_changedtick(bufnr) == state.tick
end

local function request(bufnr)
  local state = states[bufnr]
  local client = state and vim.lsp.get_client_by_id(state.client_id)
  if not client or api.nvim_get_current_buf() ~= bufnr or not api.nvim_get_mode().mode:match("^i") then
    return
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  state.row, state.col, state.tick = row - 1, col, api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(bufnr),
    position = compat.cursor_position(client.offset_encoding),
    context = { triggerKind = AUTOMATIC },
  }
  local ok, id
  ok, id = compat.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if state.request_id ~= id then
      return -- superseded by a newer request
    end
    state.request_id = nil
    if err or not result or not current(bufnr, state) then
      return
    end
    state.items, state.index = result.items or result, 1
    show(bufnr)
  end, bufnr)
  state.request_id = ok and id or nil
end

--- Ask again after `debounce` ms without typing.
local function schedule_request(bufnr, debounce)
  reset(bufnr)
  local state = states[bufnr]
  state.timer = vim.uv.new_timer()
  state.timer:start(debounce, 0, vim.schedule_wrap(function()
    stop_timer(state)
    request(bufnr)
  end))
end

--- Start ghost text in a buffer for a client.
---@param bufnr integer
---@param client_id integer
---@param debounce integer
function M.attach(bufnr, client_id, debounce)
  if states[bufnr] then
    return
  end
  states[bufnr] = { client_id = client_id, items = {}, index = 1, row = 0, col = 0, tick = 0 }
  local group = api.nvim_create_augroup("osslsp.ghost." .. bufnr, { clear = true })
  api.nvim_create_autocmd({ "InsertEnter", "CursorMovedI", "TextChangedI" }, {
    group = group, buffer = bufnr,
    callback = function() schedule_request(bufnr, debounce) end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group, buffer = bufnr,
    callback = function() reset(bufnr) end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group, buffer = bufnr,
    callback = function(args)
      if args.data and args.data.client_id == client_id then
        M.detach(bufnr)
      end
    end,
  })
end

function M.detach(bufnr)
  reset(bufnr)
  states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, "osslsp.ghost." .. bufnr)
end

--- Whether a suggestion is on screen in this buffer.
local function shown(bufnr)
  local state = states[bufnr]
  return state ~= nil and state.items[state.index] ~= nil and current(bufnr, state)
end

--- Insert the suggestion (scheduled: keymaps call this from an <expr> mapping, where the buffer
--- cannot change). False when there is none, so that the key can do what it does otherwise.
---@return boolean
function M.accept(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if not shown(bufnr) then
    return false
  end
  local state = states[bufnr]
  local text = remaining_text(bufnr, state, state.items[state.index])
  reset(bufnr)
  if not text then
    return false
  end
  vim.schedule(function()
    local lines = vim.split(text, "\n", { plain = true })
    api.nvim_buf_set_text(bufnr, state.row, state.col, state.row, state.col, lines)
    local last = #lines == 1 and state.col + #lines[1] or #lines[#lines]
    api.nvim_win_set_cursor(0, { state.row + #lines, last })
  end)
  return true
end

--- Show the next suggestion, if the server gave several.
---@return boolean
function M.next(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if not shown(bufnr) then
    return false
  end
  local state = states[bufnr]
  state.index = state.index % #state.items + 1
  show(bufnr)
  return true
end

--- Hide the suggestion.
---@return boolean
function M.dismiss(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local was_shown = shown(bufnr)
  reset(bufnr)
  return was_shown
end

--- The text on screen, for tests and statuslines.
---@return string|nil
function M.visible_text(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if not shown(bufnr) then
    return nil
  end
  local state = states[bufnr]
  return remaining_text(bufnr, state, state.items[state.index])
end

return M
