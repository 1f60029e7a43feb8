"""The SinGAN Studio daemon: trains and owns SinGAN pyramids and serves them over ZeroMQ + msgpack
(docs/protocol.md). Entry point: ``singan serve`` (:mod:`daemon.cli`); the loop is :mod:`daemon.server`."""
