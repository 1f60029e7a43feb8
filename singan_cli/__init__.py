"""The ``singan`` command line: the offline model commands (:mod:`singan_cli.model_commands`),
``serve`` (the daemon, :mod:`daemon.server`), ``protocol schema`` and ``demo`` (the whole chain
through a daemon, :mod:`singan_cli.demo`), assembled in :mod:`singan_cli.cli`."""
