--- Ghost text end to end: enter insert mode at the end of a line, see a suggestion, dismiss it
--- with the dismiss key, see it come back, accept it with the accept key, find it in the buffer.
--- OSSLSP_NVIM_CURSOR = "row,col" (1-based row, 0-based byte column).

local H = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h"), "harness.lua"))

--- The ghost text on screen: the extmarks of a namespace, joined as the text they show.
local function ghost_text(namespace_name)
  local namespace = vim.api.nvim_get_namespaces()[namespace_name]
  if not namespace then
    return nil
  end
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(0, namespace, 0, -1, { details = true })) do
    local details = mark[4]
    local lines = {}
    for _, line in ipairs({ details.virt_text or {}, unpack(details.virt_lines or {}) }) do
      local chunks = {}
      for _, chunk in ipairs(line) do
        table.insert(chunks, chunk[1])
      end
      table.insert(lines, table.concat(chunks))
    end
    return { row = mark[2], col = mark[3], text = table.concat(lines, "\n") }
  end
end

H.run(function()
  local namespace = H.options.inline_completion == "fallback" and "osslsp.ghost" or "nvim.lsp.inline_completion"
  local row, col = (os.getenv("OSSLSP_NVIM_CURSOR") or "1,0"):match("(%d+),(%d+)")
  H.start_server()
  H.result.before = H.buffer_text()
  vim.api.nvim_win_set_cursor(0, { tonumber(row), tonumber(col) })
  H.type("a")
  H.result.shown = H.wait(function() return ghost_text(namespace) end, 20000, "ghost text")
  H.result.mode = vim.api.nvim_get_mode().mode

  H.type("<C-]>")
  H.wait(function() return ghost_text(namespace) == nil end, 5000, "the dismiss key to hide the ghost text")
  H.result.after_dismiss = H.buffer_text()

  -- Moving the cursor asks again; the same place gets a suggestion again.
  H.type("<Left>")
  H.sleep(50) -- typed apart: Neovim reports one CursorMovedI for keys that end where they began
  H.type("<Right>")
  H.result.shown_again = H.wait(function() return ghost_text(namespace) end, 20000, "ghost text after moving")
  H.type("<Tab>")
  H.wait(function() return H.buffer_text() ~= H.result.before end, 5000, "the accept key to insert the text")
  H.result.after = H.buffer_text()
  H.result.cursor = vim.api.nvim_win_get_cursor(0)
end)
