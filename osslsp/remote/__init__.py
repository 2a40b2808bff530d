"""Generation over HTTP: `osslsp engine` serves one model to many language servers through the
OpenAI-compatible API, and `RemoteBackend` lets a language server use it (or vLLM, SGLang,
llama.cpp's server) instead of a model in its own process."""
