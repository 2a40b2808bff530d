--- Ghost text through Neovim's own `vim.lsp.inline_completion` (0.12+), with the same small
--- interface as `ghost.lua` so that the keymaps do not care which one runs.

local M = {}

local inline = vim.lsp.inline_completion

--- Turn inline completion on for a buffer; Neovim then asks every client in it that supports it.
---@param bufnr integer
function M.attach(bufnr)
  inline.enable(true, { bufnr = bufnr })
end

---@return boolean
function M.accept(bufnr)
  return inline.get({ bufnr = bufnr })
end

--- Neovim 0.12 does not say whether a suggestion is shown: a key mapped to `next` is consumed.
---@return boolean
function M.next(bufnr)
  inline.select({ bufnr = bufnr, count = 1 })
  return true
end

--- Neovim 0.12 has no dismiss: taking the item with a handler that inserts nothing hides it.
---@return boolean
function M.dismiss(bufnr)
  return inline.get({ bufnr = bufnr, on_accept = function() end })
end

return M
