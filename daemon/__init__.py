"""The SinGAN Studio daemon: trains and owns SinGAN pyramids and serves them over ZeroMQ + msgpack
(docs/protocol.md). Started by ``singan serve`` (:mod:`singan_cli.cli`); the loop is :mod:`daemon.server`."""
