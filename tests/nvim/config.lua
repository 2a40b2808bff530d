--- The plugin's options without a server: bad options warn and fall back to defaults, the client
--- configuration sends settings as the server expects, and doctor's command line follows cmd.

local H = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h"), "harness.lua"))
local config = require("osslsp.config")

H.run(function()
  local options, warnings = config.resolve({
    cmd = "osslsp serve", bogus = true, keymaps = { accept = "<C-y>", next = 3, later = "x" },
    inline_completion = "sometimes", debounce = 40,
  })
  H.result.bad = { options = options, warnings = warnings }

  local empty = config.client_config(config.resolve({}))
  H.result.empty_settings_json = vim.json.encode(empty.settings)
  local tiny = config.resolve({ cmd = { "/venv/bin/python", "-m", "osslsp", "serve", "--model", "tiny" },
    settings = { maxNewTokens = 8 } })
  H.result.client_config = config.client_config(tiny)
  H.result.doctor_cmd = config.doctor_cmd(tiny)
  tiny.settings.model = "smollm2"
  H.result.doctor_cmd_setting = config.doctor_cmd(tiny)
  H.result.no_keymaps = config.resolve({ keymaps = false }).keymaps
  H.result.ruby_only_filetypes = config.client_config(config.resolve({ filetypes = { "ruby" } })).filetypes

  -- setup() with a missing executable says so instead of failing later without a word.
  require("osslsp").setup({ cmd = { "osslsp-not-installed-here", "serve" } })
end)
