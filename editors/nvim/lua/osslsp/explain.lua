--- `:OsslspExplain`: the explanation of a range, streamed by the server as `osslsp/explanation`
--- notifications ({uri, range, markdown = the whole text so far, done}) into a floating window.

local M = {}

local api = vim.api
local TITLE = " osslsp: explanation "

---@class osslsp.Explanation
---@field buf integer the float's buffer
---@field win integer|nil the float, nil once the user closed it
---@field markdown string the text so far
---@field done boolean

--- The explanation per document URI (one at a time per document: a new one replaces the old).
---@type table<string, osslsp.Explanation>
M.explanations = {}

local function size(lines)
  local width = 20
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width + 2, math.max(20, math.floor(vim.o.columns * 0.8)))
  local height = math.min(math.max(#lines, 1), math.max(3, math.floor(vim.o.lines * 0.6)))
  return width, height
end

local function render(explanation)
  if not api.nvim_buf_is_valid(explanation.buf) then
    return
  end
  local lines = vim.split(explanation.markdown, "\n", { plain = true })
  vim.bo[explanation.buf].modifiable = true
  api.nvim_buf_set_lines(explanation.buf, 0, -1, false, lines)
  vim.bo[explanation.buf].modifiable = false
  local win = explanation.win
  if win and api.nvim_win_is_valid(win) then
    local width, height = size(lines)
    api.nvim_win_set_config(win, {
      relative = "editor", row = 1, col = vim.o.columns - width - 2, width = width, height = height,
      title = TITLE .. (explanation.done and "" or "(writing…) "),
    })
    -- Follow the text as it grows, unless the user is reading in the float.
    if api.nvim_get_current_win() ~= win then
      api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(explanation.buf), 0 })
    end
  end
end

--- Open the float for a document's explanation, with a placeholder until text arrives.
---@param uri string
---@return osslsp.Explanation
function M.open(uri)
  M.close(uri)
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].filetype = "markdown"
  vim.bo[buf].bufhidden = "wipe"
  local width, height = size({ "Explaining…" })
  local win = api.nvim_open_win(buf, false, {
    relative = "editor", row = 1, col = vim.o.columns - width - 2, width = width, height = height,
    style = "minimal", border = "rounded", title = TITLE, focusable = true,
  })
  vim.wo[win].wrap = true
  vim.wo[win].conceallevel = 2
  vim.keymap.set("n", "q", "<cmd>close<cr>", { buffer = buf, nowait = true, desc = "close the explanation" })
  local explanation = { buf = buf, win = win, markdown = "Explaining…", done = false }
  M.explanations[uri] = explanation
  render(explanation)
  return explanation
end

function M.close(uri)
  local explanation = M.explanations[uri]
  if explanation and explanation.win and api.nvim_win_is_valid(explanation.win) then
    api.nvim_win_close(explanation.win, true)
  end
  M.explanations[uri] = nil
end

--- Show a failure in the float (the command's error), so the user sees why no text comes.
function M.fail(uri, message)
  local explanation = M.explanations[uri]
  if explanation then
    explanation.markdown, explanation.done = "**osslsp could not explain this:** " .. message, true
    render(explanation)
  end
end

--- The `osslsp/explanation` notification handler.
---@param params {uri: string, markdown: string, done: boolean}
function M.on_notification(_, params)
  if type(params) ~= "table" or type(params.uri) ~= "string" then
    return
  end
  local explanation = M.explanations[params.uri]
  if explanation and not api.nvim_buf_is_valid(explanation.buf) then
    if not explanation.done then -- the user closed the float mid-stream: let the rest go by
      explanation.done = params.done == true
      return
    end
    explanation = nil
  end
  -- An explanation that arrives without :OsslspExplain (a code action) opens its own float.
  explanation = explanation or M.open(params.uri)
  explanation.markdown = type(params.markdown) == "string" and params.markdown or ""
  explanation.done = params.done == true
  render(explanation)
end

return M
