--- One editing session against the real server, in parts (each records what it saw or its error):
---   native    ghost text through Neovim's own inline completion: shown, dismissed, shown again, accepted
---   commands  :OsslspStatus, :OsslspPrompt (cursor after non-ASCII text, so that columns counted
---             differently by client and server would show), :OsslspExplain, :OsslspGenerate
---   code_actions  "Explain selection" and "Generate function from docstring" picked as a user would
---   fallback  setup() again with the plugin's own ghost text; the same round trip in a new buffer
---   health    :checkhealth osslsp with the server running, then with a model that does not exist
--- The plan (OSSLSP_NVIM_PLAN) names the files and cursors: {native = {file, cursor}, commands =
--- {file, prompt_cursor, stub_cursor}, fallback = {file, cursor}, missing_model}.

local H = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h"), "harness.lua"))
local plan = H.plan
local api = vim.api

--- The ghost text on screen: the first extmark of a namespace, as the text it shows.
local function ghost_text(namespace_name)
  local namespace = api.nvim_get_namespaces()[namespace_name]
  local mark = namespace and api.nvim_buf_get_extmarks(0, namespace, 0, -1, { details = true })[1]
  if not mark then
    return nil
  end
  local lines = {}
  for _, line in ipairs({ mark[4].virt_text or {}, unpack(mark[4].virt_lines or {}) }) do
    local chunks = {}
    for _, chunk in ipairs(line) do
      table.insert(chunks, chunk[1])
    end
    table.insert(lines, table.concat(chunks))
  end
  return { row = mark[2], col = mark[3], text = table.concat(lines, "\n") }
end

local function leave_insert_mode()
  H.type("<Esc>")
  H.wait(function() return api.nvim_get_mode().mode == "n" end, 5000, "normal mode")
end

--- Append after the cursor: see a suggestion, dismiss it with the dismiss key, move to ask again,
--- accept it with the accept key.
local function ghost_round_trip(namespace, cursor)
  local seen = {}
  seen.before = H.buffer_text()
  api.nvim_win_set_cursor(0, cursor)
  H.type("a")
  seen.shown = H.wait(function() return ghost_text(namespace) end, 20000, "ghost text")
  seen.mode = api.nvim_get_mode().mode
  -- What the server suggests here (the tiny model is deterministic), to compare with what lands.
  local client = vim.lsp.get_clients({ name = "osslsp", bufnr = 0 })[1]
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 1 }
  local answer = assert(client:request_sync("textDocument/inlineCompletion", params, 20000, 0))
  seen.server_items = answer.result and (answer.result.items or answer.result) or { error = answer.err }

  H.type("<C-]>")
  H.wait(function() return ghost_text(namespace) == nil end, 5000, "the dismiss key to hide the ghost text")
  seen.after_dismiss = H.buffer_text()
  H.type("<Left>")
  H.sleep(50) -- typed apart: Neovim reports no CursorMovedI for keys that end where they began
  H.type("<Right>")
  seen.shown_again = H.wait(function() return ghost_text(namespace) end, 20000, "ghost text after moving")
  H.type("<Tab>")
  H.wait(function() return H.buffer_text() ~= seen.before end, 5000, "the accept key to insert the text")
  seen.after = H.buffer_text()
  seen.cursor = api.nvim_win_get_cursor(0)
  leave_insert_mode()
  return seen
end

--- Messages shown after the first `seen` ones.
local function messages_since(seen)
  return vim.list_slice(H.result.notifications, seen + 1)
end

--- The first warning or error shown after the first `seen` messages, if any.
local function failure_since(seen)
  for _, note in ipairs(messages_since(seen)) do
    if note.level and note.level >= vim.log.levels.WARN then
      return note.message
    end
  end
end

local function status_command()
  local seen = #H.result.notifications
  vim.cmd("OsslspStatus")
  return H.wait(function()
    for _, note in ipairs(messages_since(seen)) do
      if note.message:find("model:", 1, true) then
        return { message = note.message }
      end
    end
  end, 10000, "the status message")
end

local function prompt_command(cursor)
  api.nvim_win_set_cursor(0, cursor)
  local seen = #H.result.notifications
  vim.cmd("OsslspPrompt")
  local scratch = H.wait(function()
    local failure = failure_since(seen)
    if failure then
      error(failure)
    end
    local buf = api.nvim_get_current_buf()
    return api.nvim_buf_get_name(buf):find("osslsp://prompt", 1, true) and buf
  end, 10000, "the prompt buffer")
  local shown = { text = H.buffer_text(scratch), tokens = vim.b[scratch].osslsp_prompt_tokens,
    buftype = vim.bo[scratch].buftype }
  vim.cmd("close")
  return shown
end

local function explain_command(source)
  local uri = vim.uri_from_bufnr(source)
  local explanations = require("osslsp.explain").explanations
  vim.cmd("1,2OsslspExplain")
  local float = explanations[uri]
  local seen = { float_opened = float ~= nil and api.nvim_win_is_valid(float.win) }
  local done = H.wait(function()
    local current = explanations[uri]
    return current and current.done and current
  end, 30000, "the explanation to finish")
  seen.markdown = done.markdown
  seen.float_text = api.nvim_buf_is_valid(done.buf) and H.buffer_text(done.buf) or nil
  seen.float_open = done.win ~= nil and api.nvim_win_is_valid(done.win)
  require("osslsp.explain").close(uri)
  return seen
end

local function generate_command(cursor)
  local before = H.buffer_text()
  local seen = #H.result.notifications
  api.nvim_win_set_cursor(0, cursor)
  vim.cmd("OsslspGenerate")
  -- Either the server edits the buffer or it says why not.
  H.wait(function() return H.buffer_text() ~= before or failure_since(seen) end, 30000,
    "the generated body or a message")
  return { before = before, after = H.buffer_text(), messages = messages_since(seen) }
end

--- The code actions as a user picks them (vim.lsp.buf.code_action, applied when only the named
--- one is left): "Explain selection" over lines 1-2 must open the float from the server's
--- notifications alone; "Generate function from docstring" at the stub must edit or say why not.
local function code_actions(source, stub_cursor)
  local uri = vim.uri_from_bufnr(source)
  local explanations = require("osslsp.explain").explanations
  local function pick(title, range)
    vim.lsp.buf.code_action({
      range = range, apply = true,
      filter = function(action) return action.title == title end,
    })
  end
  local seen = {}
  pick("Explain selection", { start = { 1, 0 }, ["end"] = { 2, 0 } })
  local done = H.wait(function()
    local current = explanations[uri]
    return current and current.done and current
  end, 30000, "the explanation from the code action")
  seen.explain_markdown = done.markdown
  seen.explain_float_open = done.win ~= nil and api.nvim_win_is_valid(done.win)
  require("osslsp.explain").close(uri)

  local before = H.buffer_text()
  local messages = #H.result.notifications
  api.nvim_win_set_cursor(0, stub_cursor)
  pick("Generate function from docstring", { start = stub_cursor, ["end"] = stub_cursor })
  H.wait(function() return H.buffer_text() ~= before or failure_since(messages) end, 30000,
    "the generated body or a message")
  seen.generate = { before = before, after = H.buffer_text(), messages = messages_since(messages) }
  return seen
end

local function checkhealth()
  vim.cmd("checkhealth osslsp")
  local report = api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd("bwipeout")
  return report
end

H.run(function()
  local client = H.start_server(plan.native.file)
  H.result.offset_encoding = client.offset_encoding
  H.part("native", function() return ghost_round_trip("nvim.lsp.inline_completion", plan.native.cursor) end)

  vim.cmd.edit(vim.fn.fnameescape(plan.commands.file))
  local source = api.nvim_get_current_buf()
  H.wait(function() return #vim.lsp.get_clients({ name = "osslsp", bufnr = source }) > 0 end, 5000,
    "the client to attach")
  local commands = vim.tbl_get(client.server_capabilities, "executeCommandProvider", "commands") or {}
  H.result.server_commands = commands
  H.part("status_command", status_command)
  H.part("prompt_command", function() return prompt_command(plan.commands.prompt_cursor) end)
  if vim.list_contains(commands, "osslsp.explain") then
    H.part("explain_command", function() return explain_command(source) end)
  end
  if vim.list_contains(commands, "osslsp.generate") then
    H.part("generate_command", function() return generate_command(plan.commands.stub_cursor) end)
  end

  H.part("code_actions", function() return code_actions(source, plan.commands.stub_cursor) end)

  H.part("fallback", function()
    require("osslsp").setup(vim.tbl_extend("force", H.options, { inline_completion = "fallback" }))
    vim.cmd.edit(vim.fn.fnameescape(plan.fallback.file))
    local seen = ghost_round_trip("osslsp.ghost", plan.fallback.cursor)
    seen.clients = #vim.lsp.get_clients({ name = "osslsp" })
    return seen
  end)

  H.part("health", function()
    local report = { running = checkhealth() }
    local options = vim.deepcopy(H.options)
    options.settings.model = plan.missing_model
    require("osslsp").setup(options)
    report.missing_model = checkhealth()
    return report
  end)
end)
