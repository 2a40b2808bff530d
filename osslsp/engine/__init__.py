"""The model engine: the only part of osslsp that imports torch."""
