--- What differs between Neovim 0.10, 0.11 and 0.12, in one place.

local M = {}

M.has_011 = vim.fn.has("nvim-0.11") == 1

--- True when Neovim renders LSP inline completion itself (0.12+).
function M.native_inline_completion()
  local ok, inline = pcall(require, "vim.lsp.inline_completion")
  return ok and type(inline) == "table" and type(inline.enable) == "function"
end

--- client:request on 0.11+, client.request on 0.10 (the method form does not exist there).
---@return boolean, integer|nil ok and the request id
function M.request(client, method, params, handler, bufnr)
  if M.has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel_request(client, id)
  if M.has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- The byte column of an LSP character index in a line, clamped to the line.
---@param line string
---@param index integer
---@param encoding string "utf-8"|"utf-16"|"utf-32"
---@return integer
function M.byte_col(line, index, encoding)
  if encoding == "utf-8" then
    return math.min(index, #line)
  end
  local ok, col
  if M.has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, index, false)
  else
    ok, col = pcall(vim.str_byteindex, line, index, encoding == "utf-16")
  end
  return ok and col or #line
end

--- The length of a line in the LSP encoding's units.
---@param line string
---@param encoding string
---@return integer
function M.units(line, encoding)
  if encoding == "utf-8" then
    return #line
  end
  if M.has_011 then
    return vim.str_utfindex(line, encoding)
  end
  local utf32, utf16 = vim.str_utfindex(line)
  return encoding == "utf-16" and utf16 or utf32
end

--- The LSP position of the cursor in the current window.
function M.cursor_position(encoding)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_get_current_line()
  return { line = row - 1, character = M.units(line:sub(1, col), encoding) }
end

return M
