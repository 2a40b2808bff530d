"""The engine server: `osslsp engine` serves one model to many language servers (and any other
client) through the OpenAI-compatible API. Its client, `RemoteBackend`, is in `osslsp.backends`."""
